-- Tokens for residents themselves: the role, and the one resident the token acts for. The
-- notification service shows a resident's token that resident's inbox and settings only, so a
-- resident's token without one (or another role's token with one) must be impossible, and a
-- resident's token reaches exactly one community.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('community_worker', 'street_admin', 'district_analyst', 'department_feed', 'operator',
                    'organization_leader', 'resident'));
ALTER TABLE api_tokens ADD COLUMN resident_id bigint CHECK (resident_id > 0);
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_resident_for_residents
    CHECK ((role = 'resident') = (resident_id IS NOT NULL));
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_resident_in_a_community
    CHECK (role <> 'resident' OR node_prefix ~ '^[0-9]{12}$');

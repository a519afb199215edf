-- Tokens for an organisation's leader: the role, and the one organisation the token acts for.
-- The points service checks each record against that organisation, so a leader's token without
-- one (or another role's token with one) must be impossible, not merely unusual.
ALTER TABLE api_tokens DROP CONSTRAINT api_tokens_role_check;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_role_check
    CHECK (role IN ('community_worker', 'street_admin', 'district_analyst', 'department_feed', 'operator',
                    'organization_leader'));
ALTER TABLE api_tokens ADD COLUMN organization_id bigint;
ALTER TABLE api_tokens ADD CONSTRAINT api_tokens_organization_for_leaders
    CHECK ((role = 'organization_leader') = (organization_id IS NOT NULL));

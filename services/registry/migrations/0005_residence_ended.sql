-- When a resident leaves the street or dies, the registry itself ends their organisation
-- memberships in the same transaction (organizations.residence_ended); when they die, also their
-- community-worker appointments (workers.residence_ended).

-- An organisation whose leader left or died keeps going without a leader until a new one is
-- named (PATCH leader_resident_id); its history records the change. Registration still names one.
ALTER TABLE organizations ALTER COLUMN leader_resident_id DROP NOT NULL;

-- The reason recorded then. Like 'assessment', only the registry records it: a clerk records a
-- departure with one of the others.
ALTER TABLE workers DROP CONSTRAINT workers_left_reason_check;
ALTER TABLE workers ADD CONSTRAINT workers_left_reason_check
    CHECK (left_reason IN ('resigned', 'retired', 'transferred', 'dismissed', 'assessment', 'other',
                           'died'));

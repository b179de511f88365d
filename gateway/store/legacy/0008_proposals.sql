-- Proposals that belong to a team and a chat (issue 16): where a proposal came from (platform,
-- chat, user) so only that platform's admins may decide it and the "Learned" message goes back
-- there; what kind it is (a skill write, or a memory write with [learning] auto_memory = "ask");
-- a hash of the change so the same change is not proposed twice; why it was rejected or refused;
-- and whether the approval still has to be announced (an approval from the CLI is posted by the
-- running gateway).
ALTER TABLE learning_proposals ADD COLUMN platform TEXT NOT NULL DEFAULT '';
ALTER TABLE learning_proposals ADD COLUMN chat_id TEXT NOT NULL DEFAULT '';
ALTER TABLE learning_proposals ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE learning_proposals ADD COLUMN origin TEXT NOT NULL DEFAULT 'checkpoint';
ALTER TABLE learning_proposals ADD COLUMN kind TEXT NOT NULL DEFAULT 'skill';
ALTER TABLE learning_proposals ADD COLUMN content_hash TEXT NOT NULL DEFAULT '';
ALTER TABLE learning_proposals ADD COLUMN reason TEXT NOT NULL DEFAULT '';
ALTER TABLE learning_proposals ADD COLUMN announce TEXT NOT NULL DEFAULT '';
CREATE INDEX learning_proposals_team ON learning_proposals (team, status, id);
CREATE INDEX learning_proposals_hash ON learning_proposals (team, content_hash);
CREATE INDEX learning_proposals_announce ON learning_proposals (announce);

-- Users, memberships, sessions and API keys (stockyard.accounts).

-- name: insert_user
-- A new account under a drawn id; no row when the id or the email is taken.
INSERT INTO users (id, email, password_hash, platform_admin, created_at)
VALUES (:id, :email, :password_hash, :platform_admin, :now)
ON CONFLICT DO NOTHING
RETURNING id

-- name: user_by_email
-- An account, by its (normalised) email.
SELECT id, email, platform_admin FROM users WHERE email = :email

-- name: set_password_hash
-- Stores an account's new password hash.
UPDATE users SET password_hash = :password_hash WHERE id = :id

-- name: end_other_sessions
-- Ends every session of an account but one (the SHA-256 of its token, or '').
DELETE FROM sessions WHERE user_id = :user_id AND token_hash <> :keep

-- name: user_password
-- An account's email and password hash, by id.
SELECT email, password_hash FROM users WHERE id = :id

-- name: login_user
-- An account's id and password hash, by email: what a sign-in checks.
SELECT id, password_hash FROM users WHERE email = :email

-- name: set_role
-- Gives an account a role on a client, replacing the one it had.
INSERT INTO memberships (user_id, client_id, role) VALUES (:user_id, :client_id, :role)
ON CONFLICT (user_id, client_id) DO UPDATE SET role = excluded.role

-- name: remove_member
-- Takes an account's role on a client away.
DELETE FROM memberships WHERE client_id = :client_id AND user_id = :user_id

-- name: members
-- The accounts with a role on a client, by email.
SELECT u.id, u.email, m.role
FROM memberships m JOIN users u ON u.id = m.user_id
WHERE m.client_id = :client_id
ORDER BY u.email

-- name: insert_session
-- Opens a session, kept as the SHA-256 of its token.
INSERT INTO sessions (token_hash, user_id, created_at, expires_at)
VALUES (:token_hash, :user_id, :now, :expires_at)

-- name: end_expired_sessions
-- Forgets an account's sessions that have expired.
DELETE FROM sessions WHERE user_id = :user_id AND expires_at < :now

-- name: end_session
-- Ends one session (logout).
DELETE FROM sessions WHERE token_hash = :token_hash

-- name: insert_key
-- A new API key of a client, kept as the SHA-256 of its token; returns its id.
INSERT INTO api_keys (client_id, name, role, prefix, token_hash, created_at, created_by)
VALUES (:client_id, :name, :role, :prefix, :token_hash, :now, :created_by)
RETURNING id

-- name: key
-- A client's API key, by id.
SELECT id, client_id, name, role, prefix, created_at, created_by, revoked_at
FROM api_keys WHERE id = :id AND client_id = :client_id

-- name: keys
-- Every API key of a client, revoked ones included.
SELECT id, client_id, name, role, prefix, created_at, created_by, revoked_at
FROM api_keys WHERE client_id = :client_id ORDER BY id

-- name: revoke_key
-- Revokes a client's API key (a revoked key keeps its first revocation time).
UPDATE api_keys SET revoked_at = :now
WHERE id = :id AND client_id = :client_id AND revoked_at IS NULL

-- name: key_principal
-- The live API key a token stands for.
SELECT id, client_id, role, name FROM api_keys
WHERE token_hash = :token_hash AND revoked_at IS NULL

-- name: session_user
-- The account of a live session.
SELECT u.id, u.email, u.platform_admin
FROM sessions s JOIN users u ON u.id = s.user_id
WHERE s.token_hash = :token_hash AND s.expires_at > :now

-- name: user_roles
-- An account's role on each client it is a member of.
SELECT client_id, role FROM memberships WHERE user_id = :user_id

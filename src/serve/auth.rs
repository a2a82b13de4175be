//! Who asks: the token file and bearer authentication.
//!
//! The token file has one `TOKEN USER [admin]` per line; `#` starts a
//! comment. A user name follows the session-name rule (it becomes the
//! `OWNER` of `OWNER/NAME`). Not here: what a user may do with a session
//! (`handlers`).

use std::collections::HashMap;
use std::path::Path;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;

use super::error::ApiError;
use super::App;
use crate::names::SessionName;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub admin: bool,
}

/// Tokens and the users they stand for.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    by_token: HashMap<String, User>,
}

/// Shortest token accepted: a guessable token is no authentication.
pub const MIN_TOKEN_LEN: usize = 16;

impl Tokens {
    /// Read and check a token file; the error names `path:line`.
    pub fn load(path: &Path) -> Result<Tokens, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read the token file `{}`: {e}", path.display()))?;
        Tokens::parse(&text).map_err(|(line, why)| format!("{}:{line}: {why}", path.display()))
    }

    /// Parse a token file's text; the error is `(line, why)`.
    pub fn parse(text: &str) -> Result<Tokens, (usize, String)> {
        let mut by_token = HashMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (token, user, admin) = match fields.as_slice() {
                [t, u] => (*t, *u, false),
                [t, u, "admin"] => (*t, *u, true),
                [_, _, other] => {
                    return Err((
                        i + 1,
                        format!("expected `admin` or nothing after the user, found `{other}`"),
                    ))
                }
                _ => return Err((i + 1, "expected `TOKEN USER [admin]`".to_string())),
            };
            if token.len() < MIN_TOKEN_LEN {
                return Err((
                    i + 1,
                    format!("the token is shorter than {MIN_TOKEN_LEN} characters"),
                ));
            }
            SessionName::owned(user, &SessionName::default_session())
                .map_err(|e| (i + 1, format!("invalid user `{user}`: {e}")))?;
            let previous = by_token.insert(
                token.to_string(),
                User {
                    name: user.to_string(),
                    admin,
                },
            );
            if previous.is_some() {
                return Err((i + 1, "this token is given twice".to_string()));
            }
        }
        Ok(Tokens { by_token })
    }

    pub fn user(&self, token: &str) -> Option<&User> {
        self.by_token.get(token)
    }

    pub fn len(&self) -> usize {
        self.by_token.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_token.is_empty()
    }
}

impl FromRequestParts<std::sync::Arc<App>> for User {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &std::sync::Arc<App>,
    ) -> Result<User, ApiError> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .ok_or_else(|| {
                ApiError::unauthorized("missing `authorization: Bearer TOKEN` header")
            })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("expected `authorization: Bearer TOKEN`"))?;
        let tokens = app
            .tokens
            .read()
            .map_err(|_| ApiError::internal("token table unavailable"))?;
        tokens
            .user(token)
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("unknown token"))
    }
}

#[cfg(test)]
mod tests {
    use super::Tokens;

    #[test]
    fn token_file() {
        let t = Tokens::parse("# c\nabcdefghijklmnop alice\nqrstuvwxyz012345 bob admin # x\n\n")
            .unwrap();
        assert_eq!(t.len(), 2);
        assert!(t.user("qrstuvwxyz012345").unwrap().admin);
        assert!(!t.user("abcdefghijklmnop").unwrap().admin);
        for bad in [
            "short alice",
            "abcdefghijklmnop",
            "abcdefghijklmnop alice root",
            "abcdefghijklmnop al/ice",
            "abcdefghijklmnop alice\nabcdefghijklmnop bob",
        ] {
            assert!(Tokens::parse(bad).is_err(), "{bad}");
        }
    }
}

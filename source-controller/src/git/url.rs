//! The Git URLs a GitRepository may name: `http://`, `https://` and `ssh://` (the scp-like
//! `git@host:path` form is not accepted, as in Flux).

use super::error::GitError;

/// The transport of a [`GitUrl`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
    Ssh,
}

impl Scheme {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
            Scheme::Ssh => "ssh",
        }
    }
}

/// A parsed Git URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GitUrl {
    pub(crate) scheme: Scheme,
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
    /// The host; IPv6 addresses keep their brackets.
    pub(crate) host: String,
    pub(crate) port: Option<u16>,
    /// The path, starting with `/`.
    pub(crate) path: String,
}

impl GitUrl {
    /// Parses `scheme://[user[:password]@]host[:port]/path`.
    pub(crate) fn parse(url: &str) -> Result<Self, GitError> {
        let invalid = |reason: &str| GitError::InvalidUrl {
            url: redact(url),
            reason: reason.to_string(),
        };
        let (scheme, rest) = url
            .split_once("://")
            .ok_or_else(|| invalid("expected http://, https:// or ssh://"))?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "ssh" => Scheme::Ssh,
            _ => return Err(invalid("unsupported scheme: expected http, https or ssh")),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // `user:pa/ss@host`: the password's `/` ended the authority early.
        if !authority.contains('@') && has_password(authority) && path.contains('@') {
            return Err(invalid(
                "the user info holds a character that must be percent-encoded (such as '/'); \
                 better, move the credentials to spec.secretRef",
            ));
        }
        let (userinfo, hostport) = match authority.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, authority),
        };
        let (user, password) = match userinfo {
            None => (None, None),
            Some(info) => match info.split_once(':') {
                Some((user, password)) => {
                    (Some(percent_decode(user)), Some(percent_decode(password)))
                }
                None => (Some(percent_decode(info)), None),
            },
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            let (addr, after) = v6
                .split_once(']')
                .ok_or_else(|| invalid("unterminated IPv6 address"))?;
            let port = match after.strip_prefix(':') {
                Some(port) => Some(port),
                None if after.is_empty() => None,
                None => return Err(invalid("unexpected text after the IPv6 address")),
            };
            (format!("[{addr}]"), port)
        } else {
            match hostport.rsplit_once(':') {
                Some((host, port)) => (host.to_string(), Some(port)),
                None => (hostport.to_string(), None),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(invalid("no host"));
        }
        if host.starts_with('-') || host.chars().any(|c| c.is_whitespace() || c == '/') {
            return Err(invalid("invalid host"));
        }
        let port = match port {
            None | Some("") => None,
            Some(port) => Some(port.parse::<u16>().map_err(|_| invalid("invalid port"))?),
        };
        if path.chars().any(|c| c.is_control()) {
            return Err(invalid("invalid path"));
        }
        Ok(Self {
            scheme,
            user,
            password,
            host,
            port,
            path: path.to_string(),
        })
    }

    /// The URL without user info, for messages and logs.
    pub(crate) fn redacted(&self) -> String {
        self.with_user(None)
    }

    /// The URL with `user` (and no password) as its user info.
    pub(crate) fn with_user(&self, user: Option<&str>) -> String {
        let mut out = format!("{}://", self.scheme.as_str());
        if let Some(user) = user {
            out.push_str(user);
            out.push('@');
        }
        out.push_str(&self.host);
        if let Some(port) = self.port {
            out.push_str(&format!(":{port}"));
        }
        out.push_str(&self.path);
        out
    }

    /// Resolves a submodule URL found in `.gitmodules` against this (the superproject's) URL:
    /// absolute URLs are kept, `./x` and `../x` are relative to this URL's path.
    pub(crate) fn join_submodule(&self, relative: &str) -> Result<GitUrl, GitError> {
        if !(relative.starts_with("./") || relative.starts_with("../")) {
            if let Some(ssh) = scp_like_to_ssh(relative) {
                return GitUrl::parse(&ssh);
            }
            return GitUrl::parse(relative);
        }
        let mut segments: Vec<&str> = self
            .path
            .trim_end_matches('/')
            .split('/')
            .filter(|s| !s.is_empty())
            .collect();
        for part in relative.split('/') {
            match part {
                "." | "" => {}
                ".." => {
                    if segments.pop().is_none() {
                        return Err(GitError::InvalidUrl {
                            url: relative.to_string(),
                            reason: "the relative submodule URL leaves the host".to_string(),
                        });
                    }
                }
                other => segments.push(other),
            }
        }
        let mut joined = self.clone();
        joined.path = format!("/{}", segments.join("/"));
        Ok(joined)
    }
}

/// `git@host:org/repo.git` (the scp-like form common in `.gitmodules`) as an `ssh://` URL;
/// `None` for anything else.
fn scp_like_to_ssh(url: &str) -> Option<String> {
    if url.contains("://") {
        return None;
    }
    let (authority, path) = url.split_once(':')?;
    let host = authority.rsplit('@').next()?;
    if host.is_empty() || host.contains('/') {
        return None;
    }
    let path = path.trim_start_matches('/');
    Some(format!("ssh://{authority}/{path}"))
}

/// The URL with any user info removed (best effort, for URLs that do not parse).
///
/// Everything up to the last `@` is dropped, even past the first `/`: a password written
/// without percent-encoding may hold `/`, and hiding a bit of a path is better than showing a
/// password.
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let authority = rest.split('/').next().unwrap_or_default();
    // The usual case: user info ends at the last `@` of the authority.
    if let Some(at) = authority.rfind('@') {
        return format!("{scheme}://{}", &rest[at + 1..]);
    }
    // `user:pa/ss@host`: an unescaped `/` in a password ended the authority early; hide up to
    // the last `@` (a bit of path too, at worst) rather than show the password.
    match rest.rfind('@') {
        Some(at) if has_password(authority) => format!("{scheme}://{}", &rest[at + 1..]),
        _ => url.to_string(),
    }
}

/// Whether `authority` (no `@`) reads as `user:secret` rather than `host` or `host:port`.
fn has_password(authority: &str) -> bool {
    authority
        .split_once(':')
        .is_some_and(|(_, after)| !after.chars().all(|c| c.is_ascii_digit()))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let (Some(high), Some(low)) = (hex_value(bytes[i + 1]), hex_value(bytes[i + 2]))
        {
            out.push(high << 4 | low);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(byte: u8) -> Option<u8> {
    (byte as char)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn an_unescaped_password_is_refused_and_never_shown() {
        let err = GitUrl::parse("https://flux:pa/ss-w0rd@example.com/org/app.git").unwrap_err();
        let message = err.to_string();
        assert!(!message.contains("ss-w0rd"), "{message}");
        assert!(message.contains("percent-encoded"), "{message}");
        // A port and an `@` in the path are not a password.
        let url = GitUrl::parse("https://example.com:8443/org/app@v2.git").unwrap();
        assert_eq!(url.port, Some(8443));
        assert_eq!(
            redact("https://flux:pa/ss@example.com/x"),
            "https://example.com/x"
        );
    }

    #[test]
    fn parses_flux_urls() {
        let url = GitUrl::parse("ssh://git@github.com:2222/org/repo.git").unwrap();
        assert_eq!(url.scheme, Scheme::Ssh);
        assert_eq!(url.user.as_deref(), Some("git"));
        assert_eq!(url.host, "github.com");
        assert_eq!(url.port, Some(2222));
        assert_eq!(url.path, "/org/repo.git");

        let url = GitUrl::parse("https://fl%40x:p%3Ass@[::1]:8443/repo").unwrap();
        assert_eq!(url.user.as_deref(), Some("fl@x"));
        assert_eq!(url.password.as_deref(), Some("p:ss"));
        assert_eq!(url.host, "[::1]");
        assert_eq!(url.redacted(), "https://[::1]:8443/repo");

        let url = GitUrl::parse("HTTP://example.com").unwrap();
        assert_eq!(url.path, "/");
    }

    #[test]
    fn rejects_what_flux_rejects() {
        for bad in [
            "git@github.com:org/repo.git",
            "file:///tmp/repo",
            "ftp://host/repo",
            "https://",
            "ssh://-oProxyCommand=x/repo",
            "https://host:notaport/repo",
        ] {
            assert!(GitUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redaction_drops_user_info() {
        assert_eq!(redact("https://u:p@host/x@y"), "https://host/x@y");
        assert_eq!(redact("https://host/x"), "https://host/x");
        let err = GitUrl::parse("ftp://user:secret@host/repo").unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }

    #[test]
    fn relative_submodule_urls() {
        let base = GitUrl::parse("https://host/org/app.git").unwrap();
        assert_eq!(
            base.join_submodule("../lib.git").unwrap().redacted(),
            "https://host/org/lib.git"
        );
        assert_eq!(
            base.join_submodule("./sub.git").unwrap().redacted(),
            "https://host/org/app.git/sub.git"
        );
        assert_eq!(
            base.join_submodule("ssh://git@other/x.git")
                .unwrap()
                .redacted(),
            "ssh://other/x.git"
        );
        assert!(base.join_submodule("../../../x").is_err());
        let scp = base.join_submodule("git@github.com:org/lib.git").unwrap();
        assert_eq!(scp.scheme, Scheme::Ssh);
        assert_eq!(scp.user.as_deref(), Some("git"));
        assert_eq!(scp.redacted(), "ssh://github.com/org/lib.git");
        assert!(base.join_submodule("/local/path").is_err());
    }
}

//! The commit (and tag) that a checkout produced, with what signature verification needs.

/// An author, committer or tagger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The name.
    pub name: String,
    /// The e-mail address.
    pub email: String,
    /// Seconds since the Unix epoch.
    pub time: i64,
    /// The time zone offset as Git writes it (`+0000`).
    pub offset: String,
}

/// The checked-out commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    /// The commit hash (lowercase hex).
    pub hash: String,
    /// The full reference it was checked out through (`refs/heads/main`), if any.
    pub reference: Option<String>,
    /// The revision as Flux writes it for this commit (`main@sha1:<hash>`). It equals
    /// [`super::ResolvedRef::revision`] unless the reference moved between listing and
    /// fetching, in which case this one (what was checked out) is right.
    pub revision: String,
    /// The author.
    pub author: Option<Person>,
    /// The committer.
    pub committer: Option<Person>,
    /// The full commit message.
    pub message: String,
    /// The armored signature (`gpgsig` header: PGP or SSH), if the commit is signed.
    pub signature: Option<String>,
    /// The bytes the signature covers: the commit object without its signature header.
    pub signed_payload: Vec<u8>,
    /// The tag the commit was checked out through, when the reference is a tag.
    pub tag: Option<TagInfo>,
}

impl CommitInfo {
    /// The first line of the message (what Flux puts in its events).
    pub fn summary(&self) -> &str {
        self.message.lines().next().unwrap_or_default().trim()
    }
}

/// The tag a commit was checked out through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TagInfo {
    /// The tag name (without `refs/tags/`).
    pub name: String,
    /// The tag object's hash for an annotated tag; `None` for a lightweight tag, which has no
    /// object (and so no signature).
    pub object: Option<String>,
    /// The tagger of an annotated tag.
    pub tagger: Option<Person>,
    /// The message of an annotated tag, without the signature.
    pub message: String,
    /// The armored signature appended to an annotated tag, if any.
    pub signature: Option<String>,
    /// The bytes the signature covers: the tag object up to the signature.
    pub signed_payload: Vec<u8>,
}

impl TagInfo {
    /// A lightweight tag: a name and nothing to verify.
    pub fn lightweight(name: &str) -> Self {
        Self {
            name: name.to_string(),
            object: None,
            tagger: None,
            message: String::new(),
            signature: None,
            signed_payload: Vec::new(),
        }
    }
}

/// The signature markers Git recognises at the end of a tag message.
const SIGNATURE_STARTS: [&str; 4] = [
    "-----BEGIN PGP SIGNATURE-----",
    "-----BEGIN PGP MESSAGE-----",
    "-----BEGIN SSH SIGNATURE-----",
    "-----BEGIN SIGNED MESSAGE-----",
];

/// Parses a raw commit object (the bytes after Git's `commit <size>\0` header).
pub(crate) fn parse_commit(hash: &str, reference: Option<String>, raw: &[u8]) -> CommitInfo {
    let (headers, message) = split_headers(raw);
    let mut payload = Vec::with_capacity(raw.len());
    let mut signature = None;
    let mut author = None;
    let mut committer = None;
    for header in &headers {
        match header.name {
            "gpgsig" | "gpgsig-sha256" if signature.is_none() => {
                signature = Some(header.value.clone());
                continue;
            }
            "author" => author = parse_person(&header.value),
            "committer" => committer = parse_person(&header.value),
            _ => {}
        }
        payload.extend_from_slice(header.raw);
    }
    payload.extend_from_slice(b"\n");
    payload.extend_from_slice(message);
    CommitInfo {
        hash: hash.to_string(),
        revision: String::new(),
        reference,
        author,
        committer,
        message: String::from_utf8_lossy(message).into_owned(),
        signature,
        signed_payload: payload,
        tag: None,
    }
}

/// Parses a raw tag object (the bytes after Git's `tag <size>\0` header).
pub(crate) fn parse_tag(name: &str, hash: &str, raw: &[u8]) -> TagInfo {
    let (headers, message) = split_headers(raw);
    let tagger = headers
        .iter()
        .find(|h| h.name == "tagger")
        .and_then(|h| parse_person(&h.value));
    let header_len = raw.len() - message.len();
    // The signature is the last block of the message that starts at a line beginning with
    // one of Git's markers.
    let mut sig_start = None;
    let mut offset = 0;
    for line in message.split_inclusive(|b| *b == b'\n') {
        if SIGNATURE_STARTS
            .iter()
            .any(|marker| line.starts_with(marker.as_bytes()))
        {
            sig_start = Some(offset);
        }
        offset += line.len();
    }
    let (text, signature) = match sig_start {
        Some(at) => (
            &message[..at],
            Some(String::from_utf8_lossy(&message[at..]).into_owned()),
        ),
        None => (message, None),
    };
    TagInfo {
        name: name.to_string(),
        object: Some(hash.to_string()),
        tagger,
        message: String::from_utf8_lossy(text).into_owned(),
        signature,
        signed_payload: raw[..header_len + text.len()].to_vec(),
    }
}

/// One header of a commit or tag object, with its continuation lines.
struct Header<'a> {
    name: &'a str,
    /// The value with continuation lines joined by `\n` (their leading space removed).
    value: String,
    /// The header's bytes, with its continuation lines and final newline.
    raw: &'a [u8],
}

/// Splits an object into its headers and its message (after the first empty line).
fn split_headers(raw: &[u8]) -> (Vec<Header<'_>>, &[u8]) {
    let mut headers: Vec<Header<'_>> = Vec::new();
    let mut pos = 0;
    let mut start = 0;
    while pos < raw.len() {
        let end = raw[pos..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(raw.len(), |i| pos + i + 1);
        let line = &raw[pos..end];
        let content = line.strip_suffix(b"\n").unwrap_or(line);
        if content.is_empty() {
            if let Some(last) = headers.last_mut() {
                last.raw = &raw[start..pos];
            }
            return (headers, &raw[end..]);
        }
        if let Some(continued) = content.strip_prefix(b" ") {
            if let Some(last) = headers.last_mut() {
                last.value.push('\n');
                last.value.push_str(&String::from_utf8_lossy(continued));
            }
        } else {
            if let Some(last) = headers.last_mut() {
                last.raw = &raw[start..pos];
            }
            start = pos;
            let text = std::str::from_utf8(content).unwrap_or_default();
            let (name, value) = text.split_once(' ').unwrap_or((text, ""));
            headers.push(Header {
                name,
                value: value.to_string(),
                raw: &raw[pos..end],
            });
        }
        pos = end;
    }
    if let Some(last) = headers.last_mut() {
        last.raw = &raw[start..];
    }
    (headers, &raw[raw.len()..])
}

/// Parses `Name <email> 1700000000 +0000`.
fn parse_person(value: &str) -> Option<Person> {
    let open = value.find('<')?;
    let close = value[open..].find('>')? + open;
    let name = value[..open].trim().to_string();
    let email = value[open + 1..close].to_string();
    let mut rest = value[close + 1..].split_whitespace();
    let time = rest.next().and_then(|t| t.parse().ok()).unwrap_or_default();
    let offset = rest.next().unwrap_or("+0000").to_string();
    Some(Person {
        name,
        email,
        time,
        offset,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SIGNED_COMMIT: &str = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
author Ferroflux Test <test@ferroflux.dev> 1704067200 +0000\n\
committer Ferroflux Test <test@ferroflux.dev> 1704067200 +0100\n\
gpgsig -----BEGIN SSH SIGNATURE-----\n \
U1NIU0lH\n \n \
AAAA\n \
-----END SSH SIGNATURE-----\n\
\n\
first line\n\nbody\n";

    #[test]
    fn commit_signature_and_payload() {
        let info = parse_commit(
            "abc",
            Some("refs/heads/main".into()),
            SIGNED_COMMIT.as_bytes(),
        );
        assert_eq!(
            info.signature.as_deref(),
            Some("-----BEGIN SSH SIGNATURE-----\nU1NIU0lH\n\nAAAA\n-----END SSH SIGNATURE-----")
        );
        let payload = String::from_utf8(info.signed_payload.clone()).unwrap();
        assert_eq!(
            payload,
            "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n\
author Ferroflux Test <test@ferroflux.dev> 1704067200 +0000\n\
committer Ferroflux Test <test@ferroflux.dev> 1704067200 +0100\n\
\n\
first line\n\nbody\n"
        );
        assert_eq!(info.summary(), "first line");
        let committer = info.committer.unwrap();
        assert_eq!(committer.email, "test@ferroflux.dev");
        assert_eq!(
            (committer.time, committer.offset.as_str()),
            (1704067200, "+0100")
        );
    }

    #[test]
    fn unsigned_commit_payload_is_the_object() {
        let raw = "tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\nauthor A <a@b> 1 +0000\ncommitter A <a@b> 1 +0000\n\nmsg\n";
        let info = parse_commit("abc", None, raw.as_bytes());
        assert_eq!(info.signature, None);
        assert_eq!(info.signed_payload, raw.as_bytes());
    }

    #[test]
    fn tag_signature_is_split_from_the_message() {
        let raw = "object 1111111111111111111111111111111111111111\ntype commit\ntag v1\ntagger A <a@b> 5 +0000\n\nrelease v1\n-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n";
        let tag = parse_tag("v1", "t", raw.as_bytes());
        assert_eq!(tag.message, "release v1\n");
        assert_eq!(
            tag.signature.as_deref(),
            Some("-----BEGIN PGP SIGNATURE-----\n\nabc\n-----END PGP SIGNATURE-----\n")
        );
        assert_eq!(
            String::from_utf8(tag.signed_payload).unwrap(),
            "object 1111111111111111111111111111111111111111\ntype commit\ntag v1\ntagger A <a@b> 5 +0000\n\nrelease v1\n"
        );
        assert_eq!(tag.tagger.unwrap().time, 5);

        let unsigned = parse_tag("v1", "t", b"object 1\ntype commit\ntag v1\n\nmsg\n");
        assert_eq!(unsigned.signature, None);
        assert_eq!(
            unsigned.signed_payload,
            b"object 1\ntype commit\ntag v1\n\nmsg\n"
        );
    }
}

//! Tests against fixtures made with the real `sops` and `age` (see `testdata/README.md`).

use super::*;
use serde_json::json;
use std::path::PathBuf;

fn testdata(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("src/decrypt/testdata")
        .join(name)
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(testdata(name)).unwrap()
}

fn text(name: &str) -> String {
    String::from_utf8(read(name)).unwrap()
}

fn decryptor_with(entries: &[(&str, &str)]) -> Decryptor {
    let data = entries
        .iter()
        .map(|(k, file)| (k.to_string(), read(file)))
        .collect();
    Decryptor::from_secret_data(&data).unwrap()
}

fn main_key() -> Decryptor {
    decryptor_with(&[("identity.agekey", "age.agekey")])
}

fn yaml(bytes: &[u8]) -> serde_yaml::Value {
    serde_yaml::from_slice(bytes).unwrap()
}

/// The whole error chain, to check nothing secret leaks into it.
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn recipient(key_file: &str) -> String {
    let key = text(key_file);
    key.lines()
        .find_map(|l| l.strip_prefix("# public key: "))
        .unwrap()
        .to_string()
}

#[test]
fn identities_come_from_agekey_entries_only() {
    let mut data = BTreeMap::new();
    data.insert("identity.agekey".to_string(), read("age.agekey"));
    data.insert("other.agekey".to_string(), read("other.agekey"));
    data.insert("pgp.asc".to_string(), b"not a pgp key".to_vec());
    data.insert("sops.vault-token".to_string(), b"token".to_vec());
    data.insert("age.agekey.bak".to_string(), b"garbage".to_vec());
    let decryptor = Decryptor::from_secret_data(&data).unwrap();
    assert_eq!(decryptor.identity_count(), 2);
    assert!(!format!("{decryptor:?}").contains("AGE-SECRET-KEY"));
    assert_eq!(
        Decryptor::from_secret_data(&BTreeMap::new())
            .unwrap()
            .identity_count(),
        0
    );
}

#[test]
fn invalid_identities_are_refused_without_echoing_them() {
    let secret = "AGE-SECRET-KEY-1QQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQQ";
    for (content, expected) in [
        (
            format!("# comment\n\n{secret}\n"),
            "line 3: not an age X25519 identity",
        ),
        (
            "AGE-PLUGIN-YUBIKEY-1QQQQ\n".to_string(),
            "line 1: age plugin",
        ),
        (
            "AGE-SECRET-KEY-PQ-1QQQQ\n".to_string(),
            "line 1: post-quantum",
        ),
    ] {
        let mut data = BTreeMap::new();
        data.insert("bad.agekey".to_string(), content.into_bytes());
        let err = Decryptor::from_secret_data(&data).unwrap_err();
        let message = chain(&err);
        assert!(message.contains("'bad.agekey'"), "{message}");
        assert!(message.contains(expected), "{message}");
        assert!(!message.contains("QQQQ"), "{message}");
    }
}

#[test]
fn secret_with_encrypted_regex_decrypts_to_the_plain_manifest() {
    let out = main_key()
        .decrypt_file(&read("secret.enc.yaml"), Format::Yaml, Format::Yaml)
        .unwrap();
    assert_eq!(yaml(&out), yaml(&read("plain/secret.yaml")));
    let out = String::from_utf8(out).unwrap();
    assert!(out.starts_with("apiVersion: v1\nkind: Secret\n"), "{out}");
    assert!(!out.contains("sops"), "{out}");
}

#[test]
fn values_keep_their_types() {
    let out = main_key()
        .decrypt_file(&read("values.enc.yaml"), Format::Yaml, Format::Yaml)
        .unwrap();
    let value = yaml(&out);
    assert_eq!(value, yaml(&read("plain/values.yaml")));
    assert_eq!(value["replicas"], serde_yaml::Value::from(3));
    assert_eq!(value["ratio"], serde_yaml::Value::from(0.25));
    assert_eq!(value["big"], serde_yaml::Value::from(1.5e30));
    assert_eq!(value["enabled"], serde_yaml::Value::Bool(true));
    assert_eq!(value["tags"][1], serde_yaml::Value::from(42));
    assert_eq!(value["tags"][2], serde_yaml::Value::Bool(true));
    assert!(value["nothing"].is_null());
    assert_eq!(value["nested"]["inner"][1]["value"], "two");
}

#[test]
fn every_rule_and_format_matches_the_plain_input() {
    let decryptor = main_key();
    for (encrypted, plain) in [
        ("suffix.enc.yaml", "plain/suffix.yaml"),
        ("encsuffix.enc.yaml", "plain/suffix.yaml"),
        ("unencregex.enc.yaml", "plain/values.yaml"),
        ("macscope.enc.yaml", "plain/macscope.yaml"),
        ("two-recipients.enc.yaml", "plain/secret.yaml"),
    ] {
        let out = decryptor
            .decrypt_file(&read(encrypted), Format::Yaml, Format::Yaml)
            .unwrap_or_else(|e| panic!("{encrypted}: {}", chain(&e)));
        assert_eq!(yaml(&out), yaml(&read(plain)), "{encrypted}");
    }
    // The files really leave some values in plain text.
    assert!(text("suffix.enc.yaml").contains("name: keep-me-readable"));
    assert!(text("unencregex.enc.yaml").contains("name: demo"));
}

#[test]
fn dotenv_decrypts_with_comments_and_escaped_newlines() {
    let out = main_key()
        .decrypt_file(&read("app.enc.env"), Format::Dotenv, Format::Dotenv)
        .unwrap();
    assert_eq!(String::from_utf8(out).unwrap(), text("plain/app.env"));
}

#[test]
fn json_keeps_order_and_types() {
    let out = main_key()
        .decrypt_file(&read("config.enc.json"), Format::Json, Format::Json)
        .unwrap();
    let value: serde_json::Value = serde_json::from_slice(&out).unwrap();
    let plain: serde_json::Value = serde_json::from_slice(&read("plain/config.json")).unwrap();
    assert_eq!(value, plain);
    assert_eq!(value["port"], json!(8443));
    assert_eq!(value["ratio"], json!(1.5));
    let out = String::from_utf8(out).unwrap();
    assert!(out.find("\"zeta\"").unwrap() < out.find("\"apiKey\"").unwrap());
}

#[test]
fn binary_files_round_trip_bytes_that_are_not_utf8() {
    let out = main_key()
        .decrypt_file(&read("blob.enc.bin"), Format::Binary, Format::Binary)
        .unwrap();
    let expected = text("plain/blob.bin.hex");
    assert_eq!(hex::encode(&out), expected.trim());
    assert!(std::str::from_utf8(&out).is_err());
}

#[test]
fn any_listed_recipient_can_decrypt() {
    let other = decryptor_with(&[("o.agekey", "other.agekey")]);
    let out = other
        .decrypt_file(&read("two-recipients.enc.yaml"), Format::Yaml, Format::Yaml)
        .unwrap();
    assert_eq!(yaml(&out), yaml(&read("plain/secret.yaml")));
}

#[test]
fn wrong_key_names_the_recipients() {
    let err = main_key()
        .decrypt_file(&read("other-only.enc.yaml"), Format::Yaml, Format::Yaml)
        .unwrap_err();
    assert!(
        matches!(&err, SopsError::NoMatchingIdentity { recipients, identities: 1 }
            if recipients == &vec![recipient("other.agekey")]),
        "{err:?}"
    );
    let other = decryptor_with(&[("o.agekey", "other.agekey")]);
    let err = other
        .decrypt_file(&read("secret.enc.yaml"), Format::Yaml, Format::Yaml)
        .unwrap_err();
    assert!(err.to_string().contains(&recipient("age.agekey")), "{err}");
}

#[test]
fn missing_key_says_how_to_provide_one() {
    let none = Decryptor::from_secret_data(&BTreeMap::new()).unwrap();
    let err = none
        .decrypt_file(&read("secret.enc.yaml"), Format::Yaml, Format::Yaml)
        .unwrap_err();
    assert!(matches!(
        err,
        SopsError::NoMatchingIdentity { identities: 0, .. }
    ));
    assert!(err.to_string().contains(".agekey"), "{err}");
}

fn assert_no_secrets(message: &str) {
    for secret in [
        "s3cr3t",
        "czNjcjN0IQ==",
        "YWRtaW4=",
        "only-this-is-encrypted",
        "AGE-SECRET",
    ] {
        assert!(!message.contains(secret), "{message}");
    }
}

#[test]
fn tampered_plain_values_fail_the_mac() {
    let decryptor = main_key();
    let original = text("secret.enc.yaml");
    for tampered in [
        original.replace("name: db-credentials", "name: db-credential5"),
        original.replace("        app: db\n", ""),
        original.replace("type: Opaque\n", "type: Opaque\nextra: added\n"),
    ] {
        assert_ne!(tampered, original);
        let err = decryptor
            .decrypt_file(tampered.as_bytes(), Format::Yaml, Format::Yaml)
            .unwrap_err();
        assert!(matches!(err, SopsError::MacMismatch), "{err:?}");
        assert_no_secrets(&chain(&err));
    }
}

#[test]
fn tampered_or_moved_ciphertext_fails_authentication() {
    let decryptor = main_key();
    let original = text("secret.enc.yaml");
    let line = |key: &str| {
        original
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{key}: ENC[")))
            .unwrap()
            .to_string()
    };
    let password = line("password");
    let username = line("username");
    // Flip one character of the password's ciphertext.
    let data_at = password.find("data:").unwrap() + 5;
    let mut flipped = password.clone();
    let c = if &password[data_at..=data_at] == "A" {
        "B"
    } else {
        "A"
    };
    flipped.replace_range(data_at..=data_at, c);
    // Swap the two values: each is bound to its own key path.
    let swapped_user = username.replace("username:", "password:");
    let swapped_pass = password.replace("password:", "username:");
    for (tampered, path) in [
        (original.replace(&password, &flipped), "data.password"),
        (
            original
                .replace(&username, "@@U@@")
                .replace(&password, &swapped_user)
                .replace("@@U@@", &swapped_pass),
            "data.username",
        ),
    ] {
        let err = decryptor
            .decrypt_file(tampered.as_bytes(), Format::Yaml, Format::Yaml)
            .unwrap_err();
        assert!(
            matches!(&err, SopsError::Value { path: p, reason: ValueError::Authentication } if p == path),
            "{err:?}"
        );
        assert_no_secrets(&chain(&err));
    }
    // A value left in plain text where the rule says encrypted is refused, not passed on.
    let plain = original.replace(&password, "    password: czNjcjN0IQ==");
    let err = decryptor
        .decrypt_file(plain.as_bytes(), Format::Yaml, Format::Yaml)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            SopsError::Value {
                reason: ValueError::Format,
                ..
            }
        ),
        "{err:?}"
    );
    assert_no_secrets(&chain(&err));
}

#[test]
fn tampered_mac_entry_is_refused() {
    let original = text("secret.enc.yaml");
    let mac_line = original
        .lines()
        .find(|l| l.trim_start().starts_with("mac: ENC["))
        .unwrap();
    let at = mac_line.find("data:").unwrap() + 5;
    let mut tampered_line = mac_line.to_string();
    let c = if &mac_line[at..=at] == "A" { "B" } else { "A" };
    tampered_line.replace_range(at..=at, c);
    let err = main_key()
        .decrypt_file(
            original.replace(mac_line, &tampered_line).as_bytes(),
            Format::Yaml,
            Format::Yaml,
        )
        .unwrap_err();
    assert!(
        matches!(err, SopsError::MacValue(ValueError::Authentication)),
        "{err:?}"
    );
    // The MAC is bound to lastmodified too.
    let moved = original.replace("lastmodified: \"20", "lastmodified: \"19");
    let err = main_key()
        .decrypt_file(moved.as_bytes(), Format::Yaml, Format::Yaml)
        .unwrap_err();
    assert!(matches!(err, SopsError::MacValue(_)), "{err:?}");
}

#[test]
fn mac_only_encrypted_ignores_plain_values_but_not_the_flag() {
    let decryptor = main_key();
    let original = text("macscope.enc.yaml");
    let renamed = original.replace("name: mac-only", "name: renamed");
    let out = decryptor
        .decrypt_file(renamed.as_bytes(), Format::Yaml, Format::Yaml)
        .unwrap();
    assert_eq!(yaml(&out)["metadata"]["name"], "renamed");
    let flag_off = original.replace("mac_only_encrypted: true", "mac_only_encrypted: false");
    let err = decryptor
        .decrypt_file(flag_off.as_bytes(), Format::Yaml, Format::Yaml)
        .unwrap_err();
    assert!(matches!(err, SopsError::MacMismatch), "{err:?}");
}

#[test]
fn unsupported_features_are_named() {
    let ini = b"[sops]\nmac = ENC[x]\n";
    let err = main_key()
        .decrypt_file(ini, Format::Ini, Format::Ini)
        .unwrap_err();
    assert!(err.to_string().contains("INI"), "{err}");
    let comment_regex = text("secret.enc.yaml").replace(
        "encrypted_regex: ^(data|stringData)$",
        "encrypted_comment_regex: sops:enc",
    );
    let err = main_key()
        .decrypt_file(comment_regex.as_bytes(), Format::Yaml, Format::Yaml)
        .unwrap_err();
    assert!(err.to_string().contains("encrypted_comment_regex"), "{err}");
}

/// The fixture Secret as the build hands it over: JSON, keys sorted, with a namespace and a
/// label kustomize added.
fn built_secret() -> Value {
    let mut object: Value = serde_yaml::from_slice(&read("secret.enc.yaml")).unwrap();
    object["metadata"]["namespace"] = json!("apps");
    object["metadata"]["labels"]["team"] = json!("a");
    object
}

#[test]
fn objects_from_the_build_are_decrypted_and_lose_their_metadata() {
    let object = built_secret();
    assert!(is_sops_encrypted(&object));
    let out = main_key().decrypt_object(object).unwrap();
    assert!(!is_sops_encrypted(&out));
    assert!(out.get("sops").is_none());
    assert_eq!(out["data"]["password"], "czNjcjN0IQ==");
    assert_eq!(
        out["stringData"]["url"],
        "postgres://admin:s3cr3t!@db:5432/app?sslmode=require"
    );
    assert_eq!(
        out["stringData"]["multiline"],
        "line one\nline two: with a colon\n"
    );
    assert_eq!(out["metadata"]["namespace"], "apps");
    assert_eq!(out["metadata"]["labels"]["team"], "a");
}

#[test]
fn objects_keep_value_authentication() {
    let mut object = built_secret();
    object["data"]["password"] = object["data"]["username"].clone();
    let err = main_key().decrypt_object(object).unwrap_err();
    let message = chain(&err);
    assert!(message.contains("Secret/apps/db-credentials"), "{message}");
    assert!(message.contains("data.password"), "{message}");
    assert_no_secrets(&message);
}

#[test]
fn objects_without_sops_metadata_pass_through() {
    let decryptor = main_key();
    for object in [
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
               "data": {"k": "ENC[AES256_GCM,data:x,iv:y,tag:z,type:str]"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"},
               "data": {"k": "dmFsdWU=", "notbase64": "%%%"}}),
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "sops": {}}),
    ] {
        assert_eq!(decryptor.decrypt_object(object.clone()).unwrap(), object);
    }
}

#[test]
fn the_decrypt_annotation_turns_decryption_off() {
    let mut object = built_secret();
    object["metadata"]["annotations"] = json!({DECRYPT_ANNOTATION: "Disabled"});
    let none = Decryptor::from_secret_data(&BTreeMap::new()).unwrap();
    assert_eq!(none.decrypt_object(object.clone()).unwrap(), object);
}

#[test]
fn secret_data_entries_holding_sops_files_are_decrypted() {
    let b64 = base64::engine::general_purpose::STANDARD;
    let object = json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "gen", "namespace": "apps"},
        "data": {
            "app.env": b64.encode(read("app.enc.env")),
            "blob.bin": b64.encode(read("blob.enc.bin")),
            "config.json": b64.encode(read("config.enc.json")),
            "plain": b64.encode("hello"),
        }
    });
    let out = main_key().decrypt_object(object).unwrap();
    let entry = |k: &str| b64.decode(out["data"][k].as_str().unwrap()).unwrap();
    assert_eq!(
        String::from_utf8(entry("app.env")).unwrap(),
        text("plain/app.env")
    );
    assert_eq!(
        hex::encode(entry("blob.bin")),
        text("plain/blob.bin.hex").trim()
    );
    let config: Value = serde_json::from_slice(&entry("config.json")).unwrap();
    assert_eq!(config["apiKey"], "k-123");
    assert_eq!(entry("plain"), b"hello");

    // Entries are whole files: their MAC is checked (here: two lines swapped, each value
    // still authentic on its own).
    let original = text("app.enc.env");
    let mut lines: Vec<&str> = original.lines().collect();
    let user = lines
        .iter()
        .position(|l| l.starts_with("DB_USER="))
        .unwrap();
    let pass = lines
        .iter()
        .position(|l| l.starts_with("DB_PASSWORD="))
        .unwrap();
    lines.swap(user, pass);
    let tampered = lines.join("\n") + "\n";
    let object = json!({"kind": "Secret", "metadata": {"name": "gen"},
        "data": {"app.env": b64.encode(tampered)}});
    let err = main_key().decrypt_object(object).unwrap_err();
    assert!(
        matches!(&err, DecryptError::SecretEntry { key, source, .. }
            if key == "app.env" && matches!(**source, SopsError::MacMismatch)),
        "{err:?}"
    );
}

/// A source tree: a kustomization with generators, a patch and a nested kustomization.
fn source_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let write = |path: &str, content: &[u8]| {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    };
    write(
        "app/kustomization.yaml",
        b"resources:\n- ../base\n- https://example.com/remote.yaml\n- missing-dir\n\
          secretGenerator:\n- name: gen\n  files:\n  - config.json=secrets/config.enc.json\n  \
          - blob.bin=secrets/blob.enc.bin\n  - notes.txt\n  envs:\n  - secrets/app.enc.env\n\
          patches:\n- path: patch.yaml\n",
    );
    write("app/secrets/config.enc.json", &read("config.enc.json"));
    write("app/secrets/blob.enc.bin", &read("blob.enc.bin"));
    write("app/secrets/app.enc.env", &read("app.enc.env"));
    write("app/notes.txt", b"plain notes\n");
    write("app/patch.yaml", &read("secret.enc.yaml"));
    write(
        "base/kustomization.yml",
        b"secretGenerator:\n- name: values\n  files:\n  - values.yaml=values.enc.yaml\n",
    );
    write("base/values.enc.yaml", &read("values.enc.yaml"));
    dir
}

#[test]
fn sources_referenced_by_kustomizations_are_decrypted_in_place() {
    let dir = source_tree();
    let root = dir.path();
    main_key().decrypt_sources(root, Path::new("app")).unwrap();
    let file = |p: &str| std::fs::read(root.join(p)).unwrap();
    let config: Value = serde_json::from_slice(&file("app/secrets/config.enc.json")).unwrap();
    assert_eq!(config["nested"]["password"], "pw");
    assert_eq!(
        hex::encode(file("app/secrets/blob.enc.bin")),
        text("plain/blob.bin.hex").trim()
    );
    assert_eq!(file("app/secrets/app.enc.env"), read("plain/app.env"));
    assert_eq!(
        yaml(&file("app/patch.yaml")),
        yaml(&read("plain/secret.yaml"))
    );
    assert_eq!(
        yaml(&file("base/values.enc.yaml")),
        yaml(&read("plain/values.yaml"))
    );
    assert_eq!(file("app/notes.txt"), b"plain notes\n");
    // Decrypting again is a no-op (no SOPS metadata left); an absolute path works too.
    main_key().decrypt_sources(root, &root.join("app")).unwrap();
}

#[test]
fn sources_fail_clearly_without_the_key_and_name_the_file() {
    let dir = source_tree();
    let none = Decryptor::from_secret_data(&BTreeMap::new()).unwrap();
    let err = none
        .decrypt_sources(dir.path(), Path::new("app"))
        .unwrap_err();
    let message = chain(&err);
    assert!(
        message.contains("failed to decrypt 'app/secrets/"),
        "{message}"
    );
    assert!(message.contains(".agekey"), "{message}");
}

#[test]
fn sources_never_leave_the_root() {
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("stolen.env"), read("app.enc.env")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("app")).unwrap();

    // A relative climb out of the root.
    std::fs::write(
        root.join("app/kustomization.yaml"),
        b"secretGenerator:\n- name: s\n  envs:\n  - ../../escape.env\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("escape.env"), read("app.enc.env")).unwrap();
    let err = main_key()
        .decrypt_sources(&root, Path::new("app"))
        .unwrap_err();
    assert!(matches!(&err, DecryptError::OutsideRoot { path } if path == "../../escape.env"));
    assert_eq!(
        std::fs::read(dir.path().join("escape.env")).unwrap(),
        read("app.enc.env")
    );

    // A symlink inside the root pointing out of it.
    std::os::unix::fs::symlink(outside.path().join("stolen.env"), root.join("app/link.env"))
        .unwrap();
    std::fs::write(
        root.join("app/kustomization.yaml"),
        b"secretGenerator:\n- name: s\n  envs:\n  - link.env\n",
    )
    .unwrap();
    let err = main_key()
        .decrypt_sources(&root, Path::new("app"))
        .unwrap_err();
    assert!(matches!(err, DecryptError::OutsideRoot { .. }), "{err:?}");
    assert_eq!(
        std::fs::read(outside.path().join("stolen.env")).unwrap(),
        read("app.enc.env")
    );

    // The build path itself outside the root.
    let err = main_key()
        .decrypt_sources(&root, Path::new("../"))
        .unwrap_err();
    assert!(matches!(err, DecryptError::OutsideRoot { .. }), "{err:?}");
}

#[test]
fn sources_refuse_oversized_and_missing_files() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("kustomization.yaml"),
        b"secretGenerator:\n- name: s\n  files:\n  - big.bin\n",
    )
    .unwrap();
    let big = std::fs::File::create(root.join("big.bin")).unwrap();
    big.set_len(MAX_FILE_SIZE + 1).unwrap();
    let err = main_key()
        .decrypt_sources(root, Path::new("."))
        .unwrap_err();
    assert!(
        matches!(&err, DecryptError::TooLarge { path, .. } if path == "big.bin"),
        "{err:?}"
    );

    std::fs::write(
        root.join("kustomization.yaml"),
        b"secretGenerator:\n- name: s\n  files:\n  - nope.json\n",
    )
    .unwrap();
    let err = main_key()
        .decrypt_sources(root, Path::new("."))
        .unwrap_err();
    assert!(
        matches!(&err, DecryptError::Io { path, .. } if path == "nope.json"),
        "{err:?}"
    );

    // Two kustomization files are ambiguous; none means nothing to decrypt.
    std::fs::write(root.join("kustomization.yml"), b"resources: []\n").unwrap();
    let err = main_key()
        .decrypt_sources(root, Path::new("."))
        .unwrap_err();
    assert!(matches!(err, DecryptError::Kustomization { .. }), "{err:?}");
    let empty = tempfile::tempdir().unwrap();
    main_key()
        .decrypt_sources(empty.path(), Path::new("."))
        .unwrap();
}

#[test]
fn encrypted_sources_and_manifests_survive_the_kustomize_build() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("kustomization.yaml"),
        b"namespace: apps\nresources:\n- secret.enc.yaml\n\
          secretGenerator:\n- name: env\n  envs:\n  - app.enc.env\n  \
          options:\n    disableNameSuffixHash: true\n",
    )
    .unwrap();
    std::fs::write(root.join("secret.enc.yaml"), read("secret.enc.yaml")).unwrap();
    std::fs::write(root.join("app.enc.env"), read("app.enc.env")).unwrap();

    let decryptor = main_key();
    decryptor.decrypt_sources(root, Path::new(".")).unwrap();
    let resources =
        ferroflux_kustomize::build(root, &ferroflux_kustomize::BuildOptions::default()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut seen = 0;
    for resource in resources {
        let object = serde_json::to_value(&resource.value).unwrap();
        let object = decryptor.decrypt_object(object).unwrap();
        assert!(!is_sops_encrypted(&object));
        assert_eq!(object["metadata"]["namespace"], "apps");
        match object["metadata"]["name"].as_str().unwrap() {
            "db-credentials" => {
                assert_eq!(object["stringData"]["port"], "5432");
                assert_eq!(object["data"]["username"], "YWRtaW4=");
            }
            "env" => {
                let password = b64
                    .decode(object["data"]["DB_PASSWORD"].as_str().unwrap())
                    .unwrap();
                assert_eq!(password, b"p@ss=word:with#chars");
                let multi = b64
                    .decode(object["data"]["MULTI"].as_str().unwrap())
                    .unwrap();
                assert_eq!(multi, b"first\\nsecond");
            }
            other => panic!("unexpected object {other}"),
        }
        seen += 1;
    }
    assert_eq!(seen, 2);
}

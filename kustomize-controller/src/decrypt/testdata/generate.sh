#!/usr/bin/env bash
# Regenerates the SOPS fixtures in this folder from plain/ with the real tools:
#   GOFLAGS=-mod=mod go install github.com/getsops/sops/v3/cmd/sops@latest
#   go install filippo.io/age/cmd/...@latest
# The age keys (age.agekey, other.agekey) are TEST keys made by age-keygen; they protect
# nothing but these fixtures. Keys are kept when present so the fixtures stay readable.
set -euo pipefail
cd "$(dirname "$0")"
export PATH="$PATH:$HOME/go/bin"
[ -f age.agekey ] || age-keygen -o age.agekey
[ -f other.agekey ] || age-keygen -o other.agekey
main=$(age-keygen -y age.agekey)
other=$(age-keygen -y other.agekey)

enc() { # enc <out> <type> <in> [sops flags...]
  local out=$1 type=$2 in=$3; shift 3
  sops --encrypt --age "$main" --input-type "$type" --output-type "$type" "$@" "$in" > "$out"
}
enc secret.enc.yaml yaml plain/secret.yaml --encrypted-regex '^(data|stringData)$'
enc values.enc.yaml yaml plain/values.yaml
enc app.enc.env dotenv plain/app.env
enc config.enc.json json plain/config.json
enc suffix.enc.yaml yaml plain/suffix.yaml --unencrypted-suffix _plain
enc encsuffix.enc.yaml yaml plain/suffix.yaml --encrypted-suffix et
enc unencregex.enc.yaml yaml plain/values.yaml --unencrypted-regex '^(name|tags)$'
enc macscope.enc.yaml yaml plain/macscope.yaml --encrypted-regex '^stringData$' --mac-only-encrypted
blob=$(mktemp)
xxd -r -p plain/blob.bin.hex > "$blob"
sops --encrypt --age "$main" --input-type binary --output-type binary "$blob" > blob.enc.bin
rm -f "$blob"
sops --encrypt --age "$other,$main" --input-type yaml --output-type yaml \
  --encrypted-regex '^(data|stringData)$' plain/secret.yaml > two-recipients.enc.yaml
sops --encrypt --age "$other" --input-type yaml --output-type yaml \
  --encrypted-regex '^(data|stringData)$' plain/secret.yaml > other-only.enc.yaml

# Every fixture must decrypt with the real sops (which checks the MAC).
for f in *.enc.*; do
  SOPS_AGE_KEY_FILE=age.agekey sops --decrypt --input-type "$(case $f in *.env) echo dotenv;; *.json) echo json;; *.bin) echo binary;; *) echo yaml;; esac)" \
    --output-type "$(case $f in *.env) echo dotenv;; *.json) echo json;; *.bin) echo binary;; *) echo yaml;; esac)" "$f" > /dev/null 2>&1 \
    || [ "$f" = other-only.enc.yaml ]
done

#!/bin/sh
# A token store helper for terraform-provider-bipsync that keeps each refresh
# chain's record in a HashiCorp Vault KV version 2 secrets engine, one entry
# per chain. The provider runs it as
#
#   bipsync-store-vault.sh [--mount=MOUNT] [--prefix=PREFIX] get KEY   print the record, or nothing
#   bipsync-store-vault.sh [--mount=MOUNT] [--prefix=PREFIX] put KEY   store the record read from standard input
#
# KEY is 64 hex characters that name the chain and reveal nothing about it.
# The record is the field "record" of the entry PREFIX followed by KEY (PREFIX
# defaults to terraform-provider-bipsync/) in the KV v2 engine mounted at MOUNT
# (default secret). Options go in token_store.command as fixed arguments: this
# helper reads no BIPSYNC_STORE_* setting. The vault CLI (1.11
# or later, for -mount) finds its server and token as usual (VAULT_ADDR,
# VAULT_TOKEN, VAULT_NAMESPACE, ~/.vault-token). Records arrive encrypted with a
# key derived from the chain's seed, so Vault holds no token in clear. The
# token's policy needs, for MOUNT=secret:
#
#   path "secret/data/terraform-provider-bipsync/*"     { capabilities = ["create", "update", "read"] }
#   path "secret/metadata/terraform-provider-bipsync/*" { capabilities = ["read"] }
#
# Conditional writes (token_store.command_protocol = "2"). Each put says in
# BIPSYNC_STORE_REPLACES which record it replaces ("<generation>.<id>",
# "legacy" for a record that starts with bts1., or "none") and in
# BIPSYNC_STORE_REVISION which record it writes; a record's revision is the
# second and third dot-separated fields of its "bts2.<generation>.<id>.…"
# header, so the helper compares without decrypting anything. It exits 0 when
# the entry holds the new record (written now, or by an earlier try that was
# reported as failed), 75 when the entry holds another record than the one the
# put replaces (another runner saved first: the entry is left as it is), and
# another non-zero status on any other failure (2 for a call it does not
# understand). The write:
#
#   1. Read the entry's current version number from its metadata
#      (current_version; 0 when there is no entry), then that version's record,
#      and compare its revision. A version that was deleted holds no record.
#   2. vault kv put -cas=<that version number>. KV v2 writes only if the
#      entry's current version is still that number (0: only if there is no
#      entry) and refuses the write otherwise ("check-and-set parameter did not
#      match the current version").
#
# The check-and-set write is the atomic step: Vault compares the version and
# writes in one request. When the write fails, the helper reads the entry again
# and decides by what it holds (the new record: 0; another: 75), not by the
# error's text.
#
# Tested in this provider's test suite, through the provider and through
# OpenTofu and Terraform, against a stand-in for the vault CLI written for
# those tests. The stand-in models the commands run here (their arguments,
# output, error messages and exit status 2, versions, deleted versions and
# check-and-set as one atomic step); it is not Vault, and no Vault server runs
# in those tests.
set -eu

usage() {
	echo "usage: $0 [--mount=MOUNT] [--prefix=PREFIX] get|put KEY" >&2
	exit 2
}

mount=secret
prefix=terraform-provider-bipsync/
while [ $# -gt 0 ]; do
	case $1 in
	--mount=*) mount=${1#--mount=} ;;
	--prefix=*) prefix=${1#--prefix=} ;;
	-*) usage ;;
	*) break ;;
	esac
	shift
done
[ $# -eq 2 ] || usage
op=$1
path=$prefix$2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
err=$tmp/err
record=$tmp/record

# missing tells whether the failure in $err means there is no record: no entry
# at all, or its version was deleted.
missing() {
	grep -q -e '^No value found at ' -e '^No data found at ' "$err"
}

# revision_of prints the revision a record names: "<generation>.<id>",
# "legacy" for a bts1 record, "none" for an empty value. Anything else fails.
revision_of() {
	case $1 in
	'') echo none ;;
	bts1.*) echo legacy ;;
	bts2.*.*.*)
		rest=${1#bts2.}
		gen=${rest%%.*}
		rest=${rest#*.}
		echo "$gen.${rest%%.*}"
		;;
	*) return 1 ;;
	esac
}

# read_current sets current_version (the entry's current version number, 0
# when there is none) and current (the revision that version holds).
read_current() {
	current_version=0
	current=none
	if ! current_version=$(vault read -field=current_version "$mount/metadata/$path" 2>"$err"); then
		current_version=0
		missing && return 0
		cat "$err" >&2
		return 1
	fi
	[ "$current_version" -gt 0 ] || return 0
	if ! value=$(vault kv get -mount="$mount" -version="$current_version" -field=record "$path" 2>"$err"); then
		missing && return 0
		cat "$err" >&2
		return 1
	fi
	if ! current=$(revision_of "$value"); then
		echo "$0: $mount/$path holds something that is not a token store record; it is left alone: move it aside if you are sure no chain needs it" >&2
		return 1
	fi
}

conflict() {
	echo "$0: $mount/$path holds revision $current, not $replaces: another runner saved first" >&2
	exit 75
}

# settle decides a put whose write failed, by what the entry holds now.
settle() {
	mv "$err" "$tmp/write-err"
	read_current || exit 1
	[ "$current" != "$revision" ] || exit 0
	[ "$current" = "$replaces" ] || conflict
	cat "$tmp/write-err" >&2
	exit 1
}

case $op in
get)
	if vault kv get -mount="$mount" -field=record "$path" 2>"$err"; then
		exit 0
	fi
	# No entry yet means a new chain: print nothing and succeed. Any other
	# failure must fail, or the provider would take a live chain for a new one.
	if missing; then
		exit 0
	fi
	cat "$err" >&2
	exit 1
	;;
put)
	# The record goes through a file (mode 0600 in a private directory), never
	# the command line, where other processes could read it.
	cat >"$record"
	replaces=${BIPSYNC_STORE_REPLACES:-}
	revision=${BIPSYNC_STORE_REVISION:-}
	if [ -z "$replaces" ]; then
		# Run by hand (or by a provider that does not say what a put
		# replaces): write unconditionally.
		vault kv put -mount="$mount" "$path" "record=@$record" >/dev/null
		exit 0
	fi
	case $revision in
	*[!0-9a-f.]* | *.*.* | .* | *.) echo "$0: BIPSYNC_STORE_REVISION is '$revision', not <generation>.<id>" >&2; exit 2 ;;
	*.*) ;;
	*) echo "$0: BIPSYNC_STORE_REVISION is '$revision', not <generation>.<id>" >&2; exit 2 ;;
	esac
	if [ "$(revision_of "$(head -c 80 "$record")" || true)" != "$revision" ]; then
		echo "$0: the record on standard input is not revision $revision" >&2
		exit 2
	fi

	read_current || exit 1
	[ "$current" != "$revision" ] || exit 0
	[ "$current" = "$replaces" ] || conflict
	vault kv put -mount="$mount" -cas="$current_version" "$path" "record=@$record" >/dev/null 2>"$err" || settle
	exit 0
	;;
*)
	echo "$0: unknown operation '$op' (want get or put)" >&2
	exit 2
	;;
esac

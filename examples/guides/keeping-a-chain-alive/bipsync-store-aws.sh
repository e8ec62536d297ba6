#!/bin/sh
# A token store helper for terraform-provider-bipsync that keeps each refresh
# chain's record in AWS Secrets Manager, one secret per chain. The provider
# runs it as
#
#   bipsync-store-aws.sh [--prefix=PREFIX] get KEY   print the record, or nothing if none exists
#   bipsync-store-aws.sh [--prefix=PREFIX] put KEY   store the record read from standard input
#
# KEY is 64 hex characters that name the chain and reveal nothing about it;
# the secret is PREFIX followed by KEY (PREFIX comes from --prefix=, a fixed
# argument in token_store.command, or else from BIPSYNC_STORE_PREFIX, and
# defaults to terraform-provider-bipsync/). The provider runs its helper
# without any BIPSYNC_* variable but the helpers' own BIPSYNC_STORE_*.
# Records arrive encrypted with a key derived from the chain's seed, so the
# secrets hold no token in clear. The job's AWS credentials need
# secretsmanager:GetSecretValue, PutSecretValue, CreateSecret and
# UpdateSecretVersionStage on the secrets under the prefix.
#
# Conditional writes (token_store.command_protocol = "2"). Each put says in
# BIPSYNC_STORE_REPLACES which record it replaces ("<generation>.<id>",
# "legacy" for a record that starts with bts1., or "none") and in
# BIPSYNC_STORE_REVISION which record it writes; a record's revision is the
# second and third dot-separated fields of its "bts2.<generation>.<id>.…"
# header, so the helper compares without decrypting anything. It exits 0 when
# the secret holds the new record (written now, or by an earlier try that was
# reported as failed), 75 when the secret holds another record than the one the
# put replaces (another runner saved first: the secret is left as it is), and
# another non-zero status on any other failure (2 for a call it does not
# understand). The write:
#
#   1. Read the VersionId that carries the AWSCURRENT label, then that
#      version's value, and compare its revision. Reads name the label
#      (--version-stage AWSCURRENT), which is also Secrets Manager's default,
#      so that an emulator that defaults to another version reads the same.
#   2. No secret yet: create-secret, which Secrets Manager refuses with
#      ResourceExistsException when the secret exists by then.
#   3. Otherwise put-secret-value with a staging label of the helper's own
#      (BIPSYNC_PENDING), so that AWSCURRENT does not move, and
#      --client-request-token <generation>-<id>, which becomes the new version's
#      ID: a repeated put of one record makes no second version. Then
#      update-secret-version-stage --version-stage AWSCURRENT
#      --move-to-version-id NEW --remove-from-version-id OLD.
#
# The last call is the atomic step. The Secrets Manager API reference says that
# when the label is attached to a version other than RemoveFromVersionId the
# call fails, and that a label is attached to one version at a time: so
# AWSCURRENT moves to the new version only if it is still on the version read
# in step 1. The helper relies on Secrets Manager checking and moving in that
# one call, with no other call in between; AWS documents the check, not its
# isolation from concurrent calls in so many words. When a call fails, the
# helper reads the secret again and decides by what it holds (the new record:
# 0; another: 75), not by the error's text.
#
# Every put makes a secret version. Secrets Manager advises against putting
# more often than once every 10 minutes for long (it keeps the versions of the
# last 24 hours), so keep this for chains used a few times an hour at most.
#
# Tested in this provider's test suite with the real aws CLI (1.x) against
# moto 5.2.1, an emulator of the AWS APIs: the token store's conformance suite
# at both protocol levels, and eight runners putting at once. moto enforces
# the checks the put relies on (ResourceExistsException of create-secret and
# of a reused client request token, and the refused label move); it is not
# AWS. Also tested through the provider and through OpenTofu and Terraform
# against a stand-in for the aws CLI written for those tests, which models the
# calls made here (their arguments, output, error messages and exit status
# 254, versions and staging labels, and the label move as one atomic step).
set -eu

usage() {
	echo "usage: $0 [--prefix=PREFIX] get|put KEY" >&2
	exit 2
}

prefix=${BIPSYNC_STORE_PREFIX:-terraform-provider-bipsync/}
while [ $# -gt 0 ]; do
	case $1 in
	--prefix=*) prefix=${1#--prefix=} ;;
	-*) usage ;;
	*) break ;;
	esac
	shift
done
[ $# -eq 2 ] || usage
op=$1
name=$prefix$2

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
err=$tmp/err
record=$tmp/record

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

# read_current sets current_version (the VersionId labelled AWSCURRENT, empty when
# there is no secret) and current (the revision its value holds).
read_current() {
	current_version=
	current=none
	if ! current_version=$(aws secretsmanager get-secret-value --secret-id "$name" \
		--version-stage AWSCURRENT --query VersionId --output text 2>"$err"); then
		current_version=
		grep -q ResourceNotFoundException "$err" && return 0
		cat "$err" >&2
		return 1
	fi
	if ! value=$(aws secretsmanager get-secret-value --secret-id "$name" \
		--version-id "$current_version" --query SecretString --output text 2>"$err"); then
		cat "$err" >&2
		return 1
	fi
	if ! current=$(revision_of "$value"); then
		echo "$0: secret $name holds something that is not a token store record; it is left alone: move it aside if you are sure no chain needs it" >&2
		return 1
	fi
}

conflict() {
	echo "$0: secret $name holds revision $current, not $replaces: another runner saved first" >&2
	exit 75
}

# settle decides a put whose write failed, by what the secret holds now.
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
	if aws secretsmanager get-secret-value --secret-id "$name" \
		--version-stage AWSCURRENT --query SecretString --output text 2>"$err"; then
		exit 0
	fi
	# No secret yet means a new chain: print nothing and succeed. Any other
	# failure must fail, or the provider would take a live chain for a new one.
	if grep -q ResourceNotFoundException "$err"; then
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
		if aws secretsmanager put-secret-value --secret-id "$name" \
			--secret-string "file://$record" >/dev/null 2>"$err"; then
			exit 0
		fi
		grep -q ResourceNotFoundException "$err" || { cat "$err" >&2; exit 1; }
		aws secretsmanager create-secret --name "$name" \
			--secret-string "file://$record" >/dev/null
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
	token=$(echo "$revision" | tr . -)

	read_current || exit 1
	[ "$current" != "$revision" ] || exit 0
	[ "$current" = "$replaces" ] || conflict
	if [ -z "$current_version" ]; then
		aws secretsmanager create-secret --name "$name" --secret-string "file://$record" \
			--client-request-token "$token" >/dev/null 2>"$err" || settle
		exit 0
	fi
	if ! aws secretsmanager put-secret-value --secret-id "$name" --secret-string "file://$record" \
		--client-request-token "$token" --version-stages BIPSYNC_PENDING >/dev/null 2>"$err"; then
		# ResourceExistsException: an earlier try of this put made the version
		# (the provider seals each try afresh, so its bytes differ; its record
		# is the same). Make that version current.
		grep -q ResourceExistsException "$err" || settle
	fi
	aws secretsmanager update-secret-version-stage --secret-id "$name" --version-stage AWSCURRENT \
		--move-to-version-id "$token" --remove-from-version-id "$current_version" >/dev/null 2>"$err" || settle
	exit 0
	;;
*)
	echo "$0: unknown operation '$op' (want get or put)" >&2
	exit 2
	;;
esac

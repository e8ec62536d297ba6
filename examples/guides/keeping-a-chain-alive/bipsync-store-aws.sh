#!/bin/sh
# A token store helper for terraform-provider-bipsync that keeps each refresh
# chain's record in AWS Secrets Manager, one secret per chain. The provider
# runs it as
#
#   bipsync-store-aws.sh get KEY   print the record, or nothing if none exists
#   bipsync-store-aws.sh put KEY   store the record read from standard input
#
# KEY is 64 hex characters that name the chain and reveal nothing about it.
# Records arrive encrypted with a key derived from the chain's seed, so the
# secrets hold no token in clear. The job's AWS credentials need
# secretsmanager:GetSecretValue, PutSecretValue and CreateSecret on the
# secrets under the prefix.
set -eu

prefix=${BIPSYNC_STORE_PREFIX:-terraform-provider-bipsync/}

if [ $# -ne 2 ]; then
	echo "usage: $0 get|put KEY" >&2
	exit 2
fi
name=$prefix$2

err=$(mktemp)
record=$(mktemp)
trap 'rm -f "$err" "$record"' EXIT

case $1 in
get)
	if aws secretsmanager get-secret-value --secret-id "$name" \
		--query SecretString --output text 2>"$err"; then
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
	# Succeed only once Secrets Manager holds the record: the provider hands
	# out no token before then. The record goes through a file (mode 0600),
	# never the command line, where other processes could read it.
	cat >"$record"
	if aws secretsmanager put-secret-value --secret-id "$name" \
		--secret-string "file://$record" >/dev/null 2>"$err"; then
		exit 0
	fi
	if grep -q ResourceNotFoundException "$err"; then
		aws secretsmanager create-secret --name "$name" \
			--secret-string "file://$record" >/dev/null
		exit 0
	fi
	cat "$err" >&2
	exit 1
	;;
*)
	echo "$0: unknown operation '$1' (want get or put)" >&2
	exit 2
	;;
esac

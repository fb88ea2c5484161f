# Shared settings of the buf curl recipes; sourced by the other scripts.
# Override with environment variables:
#   BUF                path to buf (npm i @bufbuild/buf puts it in node_modules/.bin/buf)
#   SONICWIRE_TARGET   host:port of the server (default 127.0.0.1:50051)
#   SONICWIRE_URL      base URL; default http://$SONICWIRE_TARGET (plaintext HTTP/2).
#                      Use https://host:port for a TLS server (add --cacert/--cert/--key to
#                      BUF_CURL_FLAGS as needed).
#   SONICWIRE_API_KEY  sent as the x-api-key header when set
#   BUF_CURL_FLAGS     extra flags for buf curl, e.g. "-v"
BUF="${BUF:-buf}"
SONICWIRE_TARGET="${SONICWIRE_TARGET:-127.0.0.1:50051}"
URL="${SONICWIRE_URL:-http://${SONICWIRE_TARGET}}"
# Reflection gives buf the schema; --protocol grpc speaks gRPC (not Connect) over HTTP/2.
CURL=("$BUF" curl --protocol grpc --http2-prior-knowledge)
if [ -n "${SONICWIRE_API_KEY:-}" ]; then
  CURL+=(-H "x-api-key: ${SONICWIRE_API_KEY}")
fi
if [ -n "${BUF_CURL_FLAGS:-}" ]; then
  # shellcheck disable=SC2206 # word splitting of the extra flags is intended
  CURL+=(${BUF_CURL_FLAGS})
fi

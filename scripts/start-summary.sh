#!/usr/bin/env bash
# What start.sh prints once the stack is ready: where everything is, and in
# prod what is protected how. Sourced by start.sh, whose settings it reads.

# stack_summary: the stack's URLs, the API token and a curl that uses it
# (prod), the UIs (or that they are off), and prod's warnings.
stack_summary() {
  local api_token="" ui_password=""
  if [ "$APP_ENV" = prod ]; then
    api_token="${PROD_API_TOKEN:-$(prod_secret api_token)}"
    ui_password="$(prod_secret ui_password)"
  fi
  echo
  local users=""
  [ "$APP_ENV" != prod ] || [ "$own_redis" = 0 ] || users=", a user and password per service"
  echo "comms is running ($APP_ENV; Redis at $(redact_url "$REDIS_URL")$users)"
  echo "  dashboard and API   http://localhost:$CAMPAIGN_PORT/"
  if [ "$APP_ENV" = dev ]; then
    cat <<EOF
  emails              http://localhost:$MAIL_UI_PORT/
  streams             http://localhost:$REDIS_COMMANDER_PORT/ (Redis Commander)
  secrets             http://localhost:$VAULT_PORT/ui/ (OpenBao; token 0000; secret/comms/)
  create a campaign   curl http://localhost:$CAMPAIGN_PORT/api/v1/campaign/create
EOF
  else
    if [ "$uis" = 1 ]; then
      cat <<EOF
  emails              http://localhost:$MAIL_UI_PORT/ (MailDev; user comms, password below)
  streams             http://localhost:$REDIS_COMMANDER_PORT/ (Redis Commander; user comms, password below)
  secrets             http://localhost:$VAULT_PROD_PORT/ui/ (OpenBao, prod; its root token is in data/prod/openbao/init.json)
  UIs' password       $ui_password
EOF
    else
      cat <<EOF
  web UIs             off in prod (MailDev's, Redis Commander, OpenBao's): PROD_UIS=1 ./start.sh
                      starts them, behind a password
EOF
    fi
    cat <<EOF
  secrets             OpenBao (prod) at http://127.0.0.1:$VAULT_PROD_PORT: secret/comms/prod/<service>
                      (each service's token reads its own only), secret/comms-stack/prod (the
                      stack's passwords); root token and unseal key in data/prod/openbao/init.json
  API token           $api_token
  create a campaign   curl -H "Authorization: Bearer $api_token" -H 'Content-Type: application/json' \\
                        -d '{"name":"hello","subject":"Hello {{ name }}","body":"Hi {{ name }}"}' \\
                        http://localhost:$CAMPAIGN_PORT/api/v1/campaigns
EOF
  fi
  local commander="; Redis Commander on $REDIS_COMMANDER_PORT shows the streams here"
  [ "$uis" = 1 ] || commander=""
  cat <<EOF
  its progress        curl http://localhost:$CAMPAIGN_PORT/api/v1/campaigns
  logs                run/logs/ (tail -f run/logs/*.log)
  stop                ./stop.sh
RedisInsight (${manifest_port[redisinsight]}) runs only in the Docker stack: ./start.sh build-docker$commander
EOF
  if [ "$APP_ENV" = prod ]; then
    cat <<EOF

WARNING: email-service logs in to this stack's SMTP server (MailDev, which has no TLS)
         in plain text, on loopback: SMTP_ALLOW_PLAINTEXT_AUTH=true in its secret. A real
         relay needs smtp_tls = starttls and no such allowance (docs/configuration.md, prod).
EOF
  fi
}

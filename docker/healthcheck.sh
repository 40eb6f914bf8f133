#!/bin/bash
# Docker's health check of a comms service: GET /ready on the given port
# answers 200 (the service's Redis and database answer). bash's /dev/tcp,
# because the runtime image carries no HTTP client.
port="${1:?usage: comms-healthcheck PORT}"
exec 3<>"/dev/tcp/127.0.0.1/$port" || exit 1
printf 'GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' >&3
read -r -t 3 status <&3 || exit 1
[[ "$status" == "HTTP/1."?" 200"* ]]

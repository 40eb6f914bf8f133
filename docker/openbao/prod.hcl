# OpenBao (prod) in the Docker stack: server mode, its data in the volume
# openbao-prod-data (integrated storage), initialised and unsealed from the
# host by scripts/docker-prod.sh. Mounted by docker/compose.prod.yaml.
storage "raft" {
  path    = "/openbao/file"
  node_id = "comms-prod"
}
# Plain HTTP on the project's network, and published on PUBLISH_ADDRESS
# (127.0.0.1) only, for the host's start script.
listener "tcp" {
  address         = "0.0.0.0:8200"
  cluster_address = "0.0.0.0:8201"
  tls_disable     = true
}
api_addr     = "http://openbao:8200"
cluster_addr = "https://openbao:8201"
# A container has no mlock capability; the raft store is on disk anyway.
disable_mlock = true
# No web UI in prod.
ui = false

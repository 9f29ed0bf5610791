#!/bin/sh
# Entry point of the mosquitto service of deploy/docker-compose.yml: writes Mosquitto's password file from
# the logins in the environment (deploy/.env), then runs the broker with mosquitto.conf, which refuses
# anonymous clients and applies the ACL in ./acl (each sensor publishes on its own topic only).
#   MQTT_BRIDGE_PASSWORD     sensorpipe-bridge: the bridge, doctor, `tail mqtt` (read only)
#   MQTT_CHECK_PASSWORD      sensorpipe-check: this container's health check, `sensorpipe stack check`
#   MQTT_SENSOR_PASSWORDS       the sensors, "id:password" separated by spaces (the demo simulator's gateway too)
set -eu
umask 077
mkdir -p /mosquitto/auth
passwd=/mosquitto/auth/passwd
mosquitto_passwd -c -b "$passwd" sensorpipe-bridge "$MQTT_BRIDGE_PASSWORD"
mosquitto_passwd -b "$passwd" sensorpipe-check "$MQTT_CHECK_PASSWORD"
for login in $MQTT_SENSOR_PASSWORDS; do
    mosquitto_passwd -b "$passwd" "${login%%:*}" "${login#*:}"
done
chown -R mosquitto:mosquitto /mosquitto/auth
exec mosquitto -c /mosquitto/config/mosquitto.conf

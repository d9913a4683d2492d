/*
 * net.c - MQTT 3.1.1 through Eclipse Paho's synchronous C client
 * (MQTTClient, no callbacks): connect, subscribe, publish at QoS 1 and
 * wait for the broker's PUBACK, receive with a timeout.
 *
 * Every wait has a bound: the connection attempt --timeout (rounded up to
 * whole seconds, as Paho counts them), the PUBACK --timeout, a receive the
 * caller's wait, the disconnection 1 s; a SUBACK is awaited for Paho's
 * own command timeout, 10 s, which MQTTClient_create sets. The session is
 * clean: the door keeps its replay windows in RAM, so nothing queued for
 * it before it started could be accepted anyway.
 */
#include <stdio.h>
#include <string.h>

#include <MQTTClient.h>

#include "door.h"

/* broker_uri writes Paho's form of broker into out: tcp://host:port, with
 * host:port alone meaning tcp://host:port. Other schemes are refused:
 * the door links Paho without TLS. */
static int broker_uri(const char *broker, char *out, size_t cap)
{
    int n;
    if (strstr(broker, "://") == NULL)
        n = snprintf(out, cap, "tcp://%s", broker);
    else if (strncmp(broker, "tcp://", 6) == 0)
        n = snprintf(out, cap, "%s", broker);
    else {
        door_log("--broker %s: only tcp://host:port (or host:port) is supported", broker);
        return -1;
    }
    if (n < 0 || (size_t)n >= cap) {
        door_log("--broker: too long");
        return -1;
    }
    return 0;
}

/* connect_once makes one connection attempt. */
static int connect_once(struct door_net *n)
{
    MQTTClient_connectOptions opts = MQTTClient_connectOptions_initializer;
    int rc;
    opts.keepAliveInterval = 30;
    opts.cleansession = 1;
    opts.MQTTVersion = MQTTVERSION_3_1_1;
    opts.connectTimeout = (int)((n->timeout_ms + 999u) / 1000u);
    rc = MQTTClient_connect(n->client, &opts);
    if (rc != MQTTCLIENT_SUCCESS) {
        door_log("cannot connect to the broker %s (Paho code %d)", n->broker, rc);
        return -1;
    }
    return 0;
}

/* door_net_open creates the client and connects it to broker. */
int door_net_open(struct door_net *n, const char *broker,
                  const char *client_id, uint32_t timeout_ms)
{
    memset(n, 0, sizeof *n);
    n->timeout_ms = timeout_ms;
    if (broker_uri(broker, n->broker, sizeof n->broker) != 0)
        return -1;
    snprintf(n->client_id, sizeof n->client_id, "%s", client_id);
    if (MQTTClient_create(&n->client, n->broker, n->client_id,
                          MQTTCLIENT_PERSISTENCE_NONE, NULL) != MQTTCLIENT_SUCCESS) {
        door_log("--broker %s: Paho refused it", n->broker);
        return -1;
    }
    n->created = 1;
    return connect_once(n);
}

/* door_net_subscribe subscribes to filter at QoS 1; a SUBACK that refuses
 * it (0x80) is an error. */
int door_net_subscribe(struct door_net *n, const char *filter)
{
    int rc = MQTTClient_subscribe(n->client, filter, 1);
    if (rc == MQTT_BAD_SUBSCRIBE) {
        door_log("the broker refused the subscription to %s", filter);
        return -1;
    }
    if (rc != MQTTCLIENT_SUCCESS) {
        door_log("cannot subscribe to %s (Paho code %d)", filter, rc);
        return -1;
    }
    return 0;
}

/* door_net_publish publishes p[0:len] on topic at QoS 1 and waits for the
 * broker's acknowledgement, up to the timeout. Returns 0,
 * DOOR_NET_NOT_SENT or DOOR_NET_UNACKED. */
int door_net_publish(struct door_net *n, const char *topic, uint8_t *p,
                     size_t len)
{
    MQTTClient_message m = MQTTClient_message_initializer;
    MQTTClient_deliveryToken token = 0;
    int rc;
    m.payload = p;
    m.payloadlen = (int)len;
    m.qos = 1;
    rc = MQTTClient_publishMessage(n->client, topic, &m, &token);
    if (rc != MQTTCLIENT_SUCCESS) {
        door_log("publish on %s failed (Paho code %d)", topic, rc);
        return DOOR_NET_NOT_SENT;
    }
    if (MQTTClient_waitForCompletion(n->client, token, n->timeout_ms) != MQTTCLIENT_SUCCESS) {
        door_log("publish on %s not acknowledged by the broker within %lu ms", topic,
                 (unsigned long)n->timeout_ms);
        return DOOR_NET_UNACKED;
    }
    return 0;
}

/* door_net_receive waits up to wait_ms for a message. Returns 1 with in
 * filled (release it with door_net_release), 0 when none came, -1 when
 * the connection is gone. A topic with a NUL in it is dropped. */
int door_net_receive(struct door_net *n, uint32_t wait_ms,
                     struct door_inbound *in)
{
    char *topic = NULL;
    int topic_len = 0;
    MQTTClient_message *m = NULL;
    int rc = MQTTClient_receive(n->client, &topic, &topic_len, &m, wait_ms);
    if (rc == MQTTCLIENT_TOPICNAME_TRUNCATED) {
        door_log("dropped a message whose topic holds a NUL byte");
        MQTTClient_freeMessage(&m);
        MQTTClient_free(topic);
        return 0;
    }
    if (rc != MQTTCLIENT_SUCCESS)
        return -1;
    if (m == NULL)
        return MQTTClient_isConnected(n->client) ? 0 : -1;
    in->topic = topic;
    in->payload = m->payload;
    in->len = m->payloadlen > 0 ? (size_t)m->payloadlen : 0;
    in->msg = m;
    return 1;
}

/* door_net_release frees a received message. */
void door_net_release(struct door_inbound *in)
{
    MQTTClient_message *m = in->msg;
    MQTTClient_freeMessage(&m);
    MQTTClient_free(in->topic);
    in->msg = NULL;
    in->topic = NULL;
}

/* door_net_reconnect makes one attempt to connect again; the caller
 * subscribes again (the session is clean). */
int door_net_reconnect(struct door_net *n)
{
    return connect_once(n);
}

/* door_net_close disconnects (waiting up to a second for the broker) and
 * frees the client. */
void door_net_close(struct door_net *n)
{
    if (!n->created)
        return;
    if (MQTTClient_isConnected(n->client))
        MQTTClient_disconnect(n->client, 1000);
    MQTTClient_destroy(&n->client);
    n->created = 0;
}

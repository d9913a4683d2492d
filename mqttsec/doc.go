// Package mqttsec is end-to-end security for MQTT request/reply and events,
// over the Eclipse Paho clients, for brokers you do not trust.
//
// A [Server] (a gateway) registers handlers per method; a [Client] calls
// them with [Client.Request]. Every message travels in an envelope (package
// envelope; format in envelope/SPEC.md) that is MACed and/or signed,
// optionally encrypted, and bound to its sender, recipient, kind, method,
// reply-to and — for replies — to the exact request it answers. Each side
// opens what it receives under its [Keyring]'s per-peer policy, so whatever
// the broker reads, drops, replays, re-routes, reflects or rewrites, a
// handler only ever sees authentic, fresh requests meant for it, and a
// caller only ever gets the genuine reply to its own request.
//
// # Transports
//
// [NewPahoV5] (MQTT v5, github.com/eclipse/paho.golang autopaho) and
// [NewPahoV3] (MQTT v3.1.1, github.com/eclipse/paho.mqtt.golang) take the
// caller's own client configuration (broker URLs, TLS — see [TLSConfig] —,
// credentials, back-off). Both reconnect by themselves and renew every
// subscription after each reconnect; a renewal the broker refuses is logged
// as an error (Config.Logger) and retried with back-off. Incoming messages
// go to a bounded worker pool, so a slow handler never stalls the
// connection.
//
// Both read the broker through a guard, because both Paho clients allocate
// a packet's declared length (up to 256 MiB) before reading it: a packet
// longer than Config.MaxSize plus 64 KiB is never allocated. Such a PUBLISH
// reaches Paho with an empty payload, whose bytes are dropped as they
// arrive; it is acknowledged as usual, counted as too-large and logged at
// Config.RejectLevel. Any other such packet ends the connection (logged as
// an error; the transport connects again). The guard
// covers tcp://, tls://, ws://, wss:// and unix:// style URLs, dialled as
// Paho would dial them: TCP and TLS through the SOCKS5 proxy that
// all_proxy names (no_proxy exempts hosts), WebSockets with
// paho.mqtt.golang's NewWebsocket (which honours the HTTP proxy
// variables), Unix sockets also on MQTT v5, which autopaho alone does not
// offer. It also covers connections from the caller's own dialer
// (autopaho's AttemptConnection, paho.mqtt.golang's CustomOpenConnectionFn).
// WebSocket URLs with an autopaho WebSocketCfg.Dialer are left to Paho
// without it, and Start logs a warning saying so.
//
// On MQTT v5, Config.ResponseProperties adds the ResponseTopic and
// CorrelationData properties for plain v5 tools, but only the envelope's
// authenticated values are ever used. Nothing the broker may legitimately change (message
// expiry, topic alias, QoS, DUP, RETAIN, user properties) is trusted.
//
// # Topics
//
// The default scheme ([Topics]) gives each identity its own subtree —
// requests to <prefix>/<server>/req/<method>, replies to
// <prefix>/<client>/reply, events under <prefix>/<sender>/evt/ — so a broker
// ACL can keep clients apart as a second wall. A server publishes a reply
// only to the caller's own reply topic unless ServerConfig.ReplyToAllowed
// says otherwise.
//
// # Failures
//
// A message that fails to open is dropped without any answer (there is no
// authenticated peer to answer), logged at Config.RejectLevel with its error
// class (a few lines per flood: see Config.RejectLogInterval), and counted
// ([Client.Stats], [Server.Stats]). An authenticated
// caller that is not authorized, calls an unknown method, or whose handler
// fails or answers with more than Config.MaxSize allows gets a sealed error
// reply, which [Client.Request] returns as an [*Error] with a code instead
// of a timeout. QoS 1 duplicates are refused by
// the replay window, so a handler never runs twice for one request.
package mqttsec

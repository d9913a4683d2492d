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
// [NewTransport] builds one from a broker URL and [TransportOptions] (the
// MQTT version, TLS — see [TLSConfig] —, credentials). [NewPahoV5] (MQTT
// v5, github.com/eclipse/paho.golang autopaho) and [NewPahoV3] (MQTT
// v3.1.1, github.com/eclipse/paho.mqtt.golang) take the caller's own client
// configuration instead, for everything else (several broker URLs,
// back-off, a dialer of its own). Both reconnect by themselves and renew every
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
//
// # Metrics, traces and readiness
//
// A Client or Server reports through OpenTelemetry's
// metric and trace APIs, to the MeterProvider and TracerProvider of its
// Config (by default the global ones, otel.GetMeterProvider and
// otel.GetTracerProvider, which do nothing until the application installs
// an SDK). The application picks the exporter: Prometheus, OTLP, or none.
//
// Metrics (the instrument names; a Prometheus exporter writes them with
// underscores, a unit suffix and _total on counters):
//
//	mqttsec.messages                 counter    messages by outcome: the Stat names (accepted, why refused or dropped, what became of a reply)
//	mqttsec.server.handler.duration  histogram  seconds a handler ran, by method and result (ok, error, expired)
//	mqttsec.server.active_requests   updown     requests whose handler is running, by method
//	mqttsec.client.request.duration  histogram  seconds from Request to its outcome, by server, method and result
//	mqttsec.client.active_requests   updown     requests waiting for their reply
//	mqttsec.replay.duration          histogram  seconds the replay store took to check or admit a message, by operation and result (ok, replayed, error)
//	mqttsec.replay.senders           gauge      senders the replay store tracks (a store with Stats: MemoryStore, FileStore)
//	mqttsec.replay.senders.capacity  gauge      the most it tracks (its MaxSenders): it is full when the two are equal
//	mqttsec.replay.forgotten         counter    senders a full store forgot, by reason: expired (harmless), live (legitimate messages may be refused)
//	mqttsec.queue.depth              gauge      messages waiting for a worker
//	mqttsec.queue.capacity           gauge      the most that may wait (Config.QueueSize)
//	mqttsec.publish.pending          gauge      replies waiting for the broker's acknowledgement
//	mqttsec.connection.up            gauge      1 while connected to the broker, else 0
//	mqttsec.connection.events        counter    connection events: connected, reconnected, lost, failed, renewed
//
// Every measurement carries mqttsec.id, this party's id. Labels stay
// bounded whatever the network sends: mqttsec.peer is a peer of the
// keyring — for a refused message, the sender it claims, unverified, when
// that sender is in the keyring; never an id the keyring lacks, which
// gets no peer label — and a server labels only the methods it has a
// handler for (and envelope.TimeMethod), others as "_OTHER". A keyring of
// thousands of peers makes thousands of series per outcome: an OpenTelemetry
// View can drop mqttsec.peer where that is too many.
//
// Traces: Request starts a client span ("call <method>") and sends its
// context as the request's correlation id, in the W3C traceparent form
// (00-<trace id>-<span id>-<flags>), when that context is valid (a tracer
// SDK is installed, or ctx carries a span); otherwise the correlation id is
// random. On the global provider, no span is started until the
// application installs one (otel.SetTracerProvider). A server that opens the
// request starts its span ("serve <method>"), hands it to the handler in
// its context, and ends it when the reply is acknowledged by the broker.
// That span starts a trace of the server's own, linked to the caller's
// span; with Config.ContinueTraces it is the caller's span's child
// instead, so that one trace runs from client to handler, and the caller
// (an authenticated peer) chooses the trace id and the sampling. The
// correlation id is authenticated with the rest of the header but not
// encrypted: the broker sees which requests belong to one trace. It is read
// only after the request opened, and only for that link or parent:
// nothing else depends on it.
//
// [Client.Ready] and [Server.Ready] say whether the party is started,
// connected and subscribed, for a readiness check.
package mqttsec

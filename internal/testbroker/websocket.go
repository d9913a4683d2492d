package testbroker

import (
	"crypto/tls"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"

	"github.com/gorilla/websocket"
)

// WebSocketBridge serves MQTT over WebSocket on a free loopback port and
// carries each connection's bytes to and from an MQTT broker's TCP
// listener, so that a test can reach any broker (embedded, hostile or
// Mosquitto) through a ws:// URL. Bytes from the broker go out as binary
// messages of up to 32 KiB, so a large packet spans many messages, as
// MQTT over WebSocket allows.
type WebSocketBridge struct {
	srv   *httptest.Server
	to    string
	conns conns

	mu      sync.Mutex
	headers []http.Header
}

// NewWebSocketBridge starts a bridge to the broker at tcpAddr (host:port).
// With tlsConfig set it serves WebSocket over TLS (wss) with it.
func NewWebSocketBridge(tcpAddr string, tlsConfig *tls.Config) *WebSocketBridge {
	b := &WebSocketBridge{to: tcpAddr}
	b.srv = httptest.NewUnstartedServer(http.HandlerFunc(b.serve))
	// Tests refuse clients on purpose (an untrusted CA, no certificate):
	// the server's handshake errors are expected, not worth printing.
	b.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	if tlsConfig != nil {
		b.srv.TLS = tlsConfig
		b.srv.StartTLS()
	} else {
		b.srv.Start()
	}
	return b
}

// URL is the bridge's ws:// (or, over TLS, wss://) URL.
func (b *WebSocketBridge) URL() string {
	if b.srv.TLS != nil {
		return "wss://" + strings.TrimPrefix(b.srv.URL, "https://")
	}
	return "ws://" + strings.TrimPrefix(b.srv.URL, "http://")
}

// Headers returns the HTTP request headers of each WebSocket handshake the
// bridge accepted, in order.
func (b *WebSocketBridge) Headers() []http.Header {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]http.Header(nil), b.headers...)
}

// Close stops the bridge, ends its connections and waits for them.
func (b *WebSocketBridge) Close() {
	b.srv.Close()
	b.conns.closeAll()
}

var upgrader = websocket.Upgrader{Subprotocols: []string{"mqtt"}}

func (b *WebSocketBridge) serve(w http.ResponseWriter, r *http.Request) {
	ws, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	b.mu.Lock()
	b.headers = append(b.headers, r.Header.Clone())
	b.mu.Unlock()
	tcp, err := net.Dial("tcp", b.to)
	if err != nil {
		ws.Close()
		return
	}
	if !b.conns.add(ws, tcp) {
		return
	}
	b.conns.wg.Go(func() { // client to broker
		defer b.conns.drop(tcp)
		for {
			_, msg, err := ws.NextReader()
			if err != nil {
				return
			}
			if _, err := io.Copy(tcp, msg); err != nil {
				return
			}
		}
	})
	b.conns.wg.Go(func() { // broker to client
		defer b.conns.drop(ws)
		buf := make([]byte, 32<<10)
		for {
			n, err := tcp.Read(buf)
			if n > 0 && ws.WriteMessage(websocket.BinaryMessage, buf[:n]) != nil {
				return
			}
			if err != nil {
				return
			}
		}
	})
}

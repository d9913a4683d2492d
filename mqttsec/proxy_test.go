package mqttsec_test

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
)

// proxyChildEnv tells a test binary that TestBrokerThroughSOCKSProxy
// started it, and for which protocol.
const proxyChildEnv = "MQTTSEC_TEST_PROXY_CHILD"

// With all_proxy naming a SOCKS5 proxy, both transports reach the broker
// through it, as Paho does, and still read it through the size guard; TLS
// through the proxy checks the broker's name, and client certificates work. golang.org/x/net/proxy reads
// the variables once per process, so each protocol runs in a test binary
// of its own, started with them set.
func TestBrokerThroughSOCKSProxy(t *testing.T) {
	if proto := os.Getenv(proxyChildEnv); proto != "" {
		throughProxy(t, proto)
		return
	}
	socks := os.Getenv("MQTTSEC_TEST_SOCKS")
	if socks == "" {
		t.Skip("set MQTTSEC_TEST_SOCKS=host:port of a SOCKS5 proxy (microsocks, say) to run the tests through a proxy")
	}
	for _, proto := range protocols {
		t.Run(fmt.Sprintf("v%d", proto), func(t *testing.T) {
			relay := newCountingRelay(t, socks)
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokerThroughSOCKSProxy$", "-test.v", "-test.count=1", "-test.timeout=5m")
			proxyURL := "socks5://" + relay.addr()
			cmd.Env = append(os.Environ(), proxyChildEnv+"="+strconv.Itoa(proto),
				"all_proxy="+proxyURL, "ALL_PROXY="+proxyURL, "no_proxy=", "NO_PROXY=")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("through the proxy: %v\n%s", err, out)
			}
			for _, want := range []string{"--- PASS: TestBrokerThroughSOCKSProxy/oversize", "--- PASS: TestBrokerThroughSOCKSProxy/tls", "--- PASS: TestBrokerThroughSOCKSProxy/mtls"} {
				if !strings.Contains(string(out), want) {
					t.Fatalf("no %q in the output:\n%s", want, out)
				}
			}
			// The oversize case connects once; each TLS case at least
			// twice (the pair's two clients) and once more refused.
			if n := relay.conns.Load(); n < 7 {
				t.Fatalf("%d connections went through the proxy, want at least 7", n)
			}
			t.Logf("%d connections through the proxy", relay.conns.Load())
		})
	}
}

// throughProxy is TestBrokerThroughSOCKSProxy in the test binary it
// started, with the proxy in its environment.
func throughProxy(t *testing.T, protoName string) {
	proto, err := strconv.Atoi(protoName)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("oversize", func(t *testing.T) {
		testOversize(t, proto, "transport's dialer", 32<<20)
	})
	certs, files := newTestCerts(t)
	t.Run("tls", func(t *testing.T) {
		testTLSAndClientCertificates(t, certs, files, false, proto, "tls")
	})
	t.Run("mtls", func(t *testing.T) {
		testTLSAndClientCertificates(t, certs, files, true, proto, "tls")
	})
}

// countingRelay passes TCP connections on to another address and counts
// them: what goes through it went through the proxy behind it.
type countingRelay struct {
	l     net.Listener
	to    string
	conns atomic.Int64
	wg    sync.WaitGroup
	mu    sync.Mutex
	open  map[net.Conn]bool
}

// newCountingRelay starts a relay to addr; the test's cleanup stops it.
func newCountingRelay(t *testing.T, addr string) *countingRelay {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &countingRelay{l: l, to: addr, open: map[net.Conn]bool{}}
	r.wg.Go(r.accept)
	t.Cleanup(r.close)
	return r
}

func (r *countingRelay) addr() string { return r.l.Addr().String() }

func (r *countingRelay) accept() {
	for {
		c, err := r.l.Accept()
		if err != nil {
			return
		}
		r.conns.Add(1)
		up, err := net.Dial("tcp", r.to)
		if err != nil {
			c.Close()
			continue
		}
		if !r.track(c, up) {
			return
		}
		r.wg.Go(func() { pipe(up, c) })
		r.wg.Go(func() { pipe(c, up) })
	}
}

// pipe copies from src to dst until src ends, then closes both.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
}

// track registers conns for close; false (having closed them) once the
// relay is closing.
func (r *countingRelay) track(conns ...net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open == nil {
		for _, c := range conns {
			c.Close()
		}
		return false
	}
	for _, c := range conns {
		r.open[c] = true
	}
	return true
}

func (r *countingRelay) close() {
	r.l.Close()
	r.mu.Lock()
	for c := range r.open {
		c.Close()
	}
	r.open = nil
	r.mu.Unlock()
	r.wg.Wait()
}

package mqttsec_test

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/mqttsec/mqttsec/internal/testbroker"
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
			// What goes through the relay went through the proxy behind it.
			relay, err := testbroker.NewRelay(socks)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(relay.Close)
			cmd := exec.Command(os.Args[0], "-test.run=^TestBrokerThroughSOCKSProxy$", "-test.v", "-test.count=1", "-test.timeout=5m")
			proxyURL := "socks5://" + relay.Addr()
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
			if n := relay.Connections(); n < 7 {
				t.Fatalf("%d connections went through the proxy, want at least 7", n)
			}
			t.Logf("%d connections through the proxy", relay.Connections())
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

// Package mosquitto runs a private Mosquitto broker as a child process for
// tests that must stop and restart a real broker. Mosquitto 2 cannot pick a
// free port itself, so the port is chosen here and written into its
// configuration.
package mosquitto

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Broker is a running Mosquitto child process.
type Broker struct {
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
	done chan error
}

// Binary returns the path of the mosquitto executable, or "" if there is none.
func Binary() string {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

// Start runs Mosquitto on a free loopback port, with its files in dir.
func Start(dir string) (*Broker, error) { return StartWith(dir, "") }

// StartWith is Start with extra configuration lines for the listener (TLS
// files, require_certificate, acl_file, password_file, ...), written after
// the listener line; "allow_anonymous true" is added only if extra does not
// set allow_anonymous itself.
func StartWith(dir, extra string) (*Broker, error) {
	bin := Binary()
	if bin == "" {
		return nil, errors.New("mosquitto not installed")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf("per_listener_settings false\nlistener %d 127.0.0.1\nset_tcp_nodelay true\npersistence false\n", port)
	if os.Geteuid() == 0 {
		// Keep root's access to the test's private temporary files instead
		// of dropping to the mosquitto user.
		conf += "user root\n"
	}
	if !strings.Contains(extra, "allow_anonymous") {
		conf += "allow_anonymous true\n"
	}
	conf += extra
	if err := os.WriteFile(filepath.Join(dir, "mosquitto.conf"), []byte(conf), 0o644); err != nil {
		return nil, err
	}
	b := &Broker{bin: bin, dir: dir, port: port}
	return b, b.start()
}

func (b *Broker) start() error {
	b.cmd = exec.Command(b.bin, "-c", filepath.Join(b.dir, "mosquitto.conf"))
	log, err := os.OpenFile(filepath.Join(b.dir, "mosquitto.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	b.cmd.Stdout, b.cmd.Stderr = log, log
	if err := b.cmd.Start(); err != nil {
		log.Close()
		return err
	}
	b.done = make(chan error, 1)
	go func() { b.done <- b.cmd.Wait(); log.Close() }()
	// Wait until it accepts TCP connections.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", b.Addr())
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-b.done:
			return fmt.Errorf("mosquitto exited: %v (see %s)", err, filepath.Join(b.dir, "mosquitto.log"))
		case <-ctx.Done():
			b.Stop()
			return errors.New("mosquitto did not start listening")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Addr is the broker's host:port.
func (b *Broker) Addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

// URL is the broker's tcp:// URL.
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Stop kills the broker and waits for it to exit.
func (b *Broker) Stop() {
	if b.cmd != nil && b.cmd.Process != nil {
		b.cmd.Process.Kill()
		<-b.done
		b.cmd = nil
	}
}

// Restart kills the broker and starts it again on the same port.
func (b *Broker) Restart() error {
	b.Stop()
	return b.start()
}

// TLSURL is the broker's tls:// URL, for a listener configured with TLS.
func (b *Broker) TLSURL() string { return "tls://" + b.Addr() }

// Dir is the directory holding the broker's configuration and log.
func (b *Broker) Dir() string { return b.dir }

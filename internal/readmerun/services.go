//go:build linux

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// A service is one the README's commands reach at its default address on
// this machine; the runner provides it.
type service int

const (
	mosquitto service = iota + 1
	redis
	socks
)

func (s service) String() string {
	switch s {
	case mosquitto:
		return "Mosquitto"
	case redis:
		return "Redis"
	case socks:
		return "a SOCKS5 proxy (microsocks)"
	}
	return "service " + strconv.Itoa(int(s))
}

// addr is where the README's commands expect s: its default port.
func (s service) addr() string {
	switch s {
	case mosquitto:
		return "127.0.0.1:1883"
	case redis:
		return "127.0.0.1:6379"
	}
	return "127.0.0.1:1080"
}

// fromREADME reports whether the README says how to start s, so that the
// runner starts it where the README does (in a readme-run: services block)
// and a command that uses it before then fails. Redis and the proxy are
// started for the first command that uses them.
func (s service) fromREADME() bool { return s == mosquitto }

// A running service.
type running struct {
	s service
	p *proc
}

// mosquittoConf configures no listener: Mosquitto 2 then listens on port
// 1883 of the loopback interfaces only, for anonymous clients, as
// mosquitto -d does. It logs everything, to its stderr, which the runner
// reads (to see subscriptions and connections).
const mosquittoConf = "log_dest stderr\nlog_type all\npersistence false\n"

// startService starts s on its default port, with its files in dir.
func startService(s service, dir string) (*running, error) {
	if c, err := net.DialTimeout("tcp", s.addr(), time.Second); err == nil {
		c.Close()
		return nil, fmt.Errorf("%s is taken, and the README's commands expect %s there: stop what listens on it (ss -ltnp 'sport = :%s')", s.addr(), s, s.addr()[strings.LastIndex(s.addr(), ":")+1:])
	}
	name, args, ready, err := serviceCommand(s, dir)
	if err != nil {
		return nil, err
	}
	p, err := startProc(dir, os.Environ(), filepath.Join(dir, fmt.Sprintf("service-%d.log", s)), name, args...)
	if err != nil {
		return nil, err
	}
	r := &running{s: s, p: p}
	err = waitFor(30*time.Second, func() (bool, error) {
		if p.exited() {
			return false, fmt.Errorf("%s exited: %s", name, tail(p.output(), 20))
		}
		return ready.MatchString(p.output()) && dials(s.addr()), nil
	})
	if err != nil {
		r.stop()
		return nil, fmt.Errorf("starting %s on %s: %v", s, s.addr(), err)
	}
	return r, nil
}

// serviceCommand returns how to start s, and what its output shows once it
// runs.
func serviceCommand(s service, dir string) (name string, args []string, ready *regexp.Regexp, err error) {
	switch s {
	case mosquitto:
		name, err = lookTool("mosquitto", "/usr/sbin/mosquitto")
		conf := filepath.Join(dir, "mosquitto.conf")
		if err == nil {
			err = os.WriteFile(conf, []byte(mosquittoConf), 0o644)
		}
		return name, []string{"-c", conf}, regexp.MustCompile(`mosquitto version \S+ running`), err
	case redis:
		name, err = lookTool("redis-server", "/usr/bin/redis-server")
		return name, []string{"--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no", "--dir", dir}, regexp.MustCompile(`Ready to accept connections`), err
	}
	name, err = lookTool("microsocks", "/usr/bin/microsocks")
	return name, []string{"-i", "127.0.0.1", "-p", "1080"}, regexp.MustCompile(``), err
}

// lookTool finds a program on PATH, or at fallback (Debian installs
// mosquitto in /usr/sbin, which a user's PATH may lack).
func lookTool(name, fallback string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	if _, err := os.Stat(fallback); err == nil {
		return fallback, nil
	}
	return "", fmt.Errorf("%s is not installed (.ci/run installs it on Debian)", name)
}

// dials reports whether something accepts connections on addr.
func dials(addr string) bool {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err == nil {
		c.Close()
	}
	return err == nil
}

// stop ends the service.
func (r *running) stop() error {
	r.p.signal(syscall.SIGTERM)
	_, err := r.p.wait(context.Background(), 10*time.Second)
	return err
}

// connections returns how many connections the service has seen so far.
func (r *running) connections() (int, error) {
	switch r.s {
	case mosquitto:
		return strings.Count(r.p.output(), "New client connected from "), nil
	case socks:
		return strings.Count(r.p.output(), ": connected to "), nil
	}
	return redisConnections(r.s.addr())
}

// redisConnections asks the Redis at addr how many connections it has
// received, this one included.
func redisConnections(addr string) (int, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("INFO stats\r\n")); err != nil {
		return 0, err
	}
	return parseRedisInfo(bufio.NewReader(c), "total_connections_received")
}

// parseRedisInfo reads a bulk-string reply to INFO and returns the integer
// field name.
func parseRedisInfo(r *bufio.Reader, name string) (int, error) {
	head, err := r.ReadString('\n')
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(head, "$")))
	if !strings.HasPrefix(head, "$") || err != nil {
		return 0, fmt.Errorf("redis: unexpected reply %q", head)
	}
	body := make([]byte, n)
	if _, err := io.ReadFull(r, body); err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(body), "\r\n") {
		if v, ok := strings.CutPrefix(l, name+":"); ok {
			return strconv.Atoi(v)
		}
	}
	return 0, fmt.Errorf("redis: INFO has no %s", name)
}

// subscribedIn reports whether log, Mosquitto's log (log_type all) from
// some point on, shows a client subscribing to filter and Mosquitto
// acknowledging it: from then on the client receives what is published.
func subscribedIn(log, filter string) bool {
	subscribed := map[string]bool{}
	client := ""
	for _, line := range strings.Split(log, "\n") {
		_, msg, ok := strings.Cut(line, ": ") // after the timestamp
		if !ok {
			continue
		}
		if id, ok := strings.CutPrefix(msg, "Received SUBSCRIBE from "); ok {
			client = id
		} else if f, ok := strings.CutPrefix(msg, "\t"); ok && client != "" && strings.HasPrefix(f, filter+" (QoS ") {
			subscribed[client] = true
		} else if id, ok := strings.CutPrefix(msg, "Sending SUBACK to "); ok && subscribed[id] {
			return true
		}
	}
	return false
}

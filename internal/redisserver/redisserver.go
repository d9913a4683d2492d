// Package redisserver runs a private redis-server as a child process, for
// tests that must kill, restart, flush or fill a real Redis without
// disturbing anyone else's: each Server listens on a loopback port of its
// own and keeps its files (log, RDB, AOF) in a directory the test gives it.
package redisserver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Binary returns the path of the redis-server executable (on PATH, or in
// /usr/bin, /usr/local/bin or /usr/sbin), or "" if there is none.
func Binary() string {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"} {
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	return ""
}

// Server is a redis-server child process. Its methods are not safe for
// concurrent use.
type Server struct {
	bin   string
	dir   string
	port  int
	flags []string
	cmd   *exec.Cmd
	done  chan error
}

// defaults keep a server to itself and to its directory, with no
// persistence; flags given to Start come after them and override them
// (redis-server takes the last value of a setting, and a "--save" with
// a schedule after the empty one sets the snapshots anew).
func (s *Server) defaults() []string {
	return []string{
		"--port", strconv.Itoa(s.port),
		"--bind", "127.0.0.1",
		"--daemonize", "no",
		"--dir", s.dir,
		"--logfile", filepath.Join(s.dir, "redis.log"),
		"--save", "",
		"--appendonly", "no",
	}
}

// Start runs redis-server on a free loopback port, with its files in dir
// and the given configuration flags after the defaults (for example
// "--appendonly", "yes", "--appendfsync", "always", or "--maxmemory",
// "4mb"). It returns once the server answers PING (after it loaded any
// data it persisted).
func Start(dir string, flags ...string) (*Server, error) {
	bin := Binary()
	if bin == "" {
		return nil, errors.New("redis-server not installed")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &Server{bin: bin, dir: dir, port: port, flags: append([]string(nil), flags...)}
	return s, s.start()
}

func (s *Server) start() error {
	s.cmd = exec.Command(s.bin, append(s.defaults(), s.flags...)...)
	// Its log goes to its logfile; what it prints before reading its
	// configuration (a bad flag) goes here.
	early, err := os.OpenFile(filepath.Join(s.dir, "redis.stderr"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	s.cmd.Stdout, s.cmd.Stderr = early, early
	if err := s.cmd.Start(); err != nil {
		early.Close()
		s.cmd = nil
		return err
	}
	done := make(chan error, 1)
	s.done = done
	cmd := s.cmd
	go func() { done <- cmd.Wait(); early.Close() }()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for {
		if ping(ctx, s.Addr()) == nil {
			return nil
		}
		select {
		case err := <-done:
			s.cmd = nil
			return fmt.Errorf("redis-server exited: %v: %s", err, s.logTail())
		case <-ctx.Done():
			s.Kill()
			return fmt.Errorf("redis-server did not answer PING on %s: %s", s.Addr(), s.logTail())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// ping sends PING and wants PONG: a server still loading its data answers
// LOADING instead.
func ping(ctx context.Context, addr string) error {
	c, err := (&net.Dialer{Timeout: time.Second}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING: %q", strings.TrimSpace(line))
	}
	return nil
}

// logTail is the end of the server's log, for errors.
func (s *Server) logTail() string {
	var out []byte
	for _, name := range []string{"redis.stderr", "redis.log"} {
		b, _ := os.ReadFile(filepath.Join(s.dir, name))
		out = append(out, b...)
	}
	if len(out) > 2000 {
		out = out[len(out)-2000:]
	}
	return strings.TrimSpace(string(out))
}

// Addr is the server's host:port.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// Dir is the directory holding the server's log and data files.
func (s *Server) Dir() string { return s.dir }

// Running reports whether the process is running.
func (s *Server) Running() bool { return s.cmd != nil }

// Stop shuts the server down with SIGTERM, as an orderly shutdown does
// (it first writes an RDB snapshot if it is configured to save and
// flushes its AOF), and waits for it to exit; after 20 s it is killed.
// Stopping a stopped server does nothing.
func (s *Server) Stop() error {
	if s.cmd == nil {
		return nil
	}
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return s.Kill()
	}
	select {
	case <-s.done:
		s.cmd = nil
		return nil
	case <-time.After(20 * time.Second):
		return s.Kill()
	}
}

// Kill ends the server with SIGKILL, as a crash or a power cut would:
// it writes nothing more. It waits for the process to exit. Killing a
// stopped server does nothing.
func (s *Server) Kill() error {
	if s.cmd == nil {
		return nil
	}
	err := s.cmd.Process.Kill()
	<-s.done
	s.cmd = nil
	if errors.Is(err, os.ErrProcessDone) {
		err = nil
	}
	return err
}

// Restart starts the server again on the same port, with the same flags
// and directory (so it loads whatever it persisted there), after stopping
// it with Stop if it is running; call Kill first for a crash.
func (s *Server) Restart() error {
	if err := s.Stop(); err != nil {
		return err
	}
	return s.start()
}

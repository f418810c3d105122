package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"time"
)

// child is one supervised component (kine, kube-apiserver, kube-controller-manager).
type child struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has been waited for
	err  error
}

// supervisor runs the components. The systemd unit uses KillMode=process, so systemd signals only
// this process: stopping the children is our job. Pdeathsig covers the case where we are
// SIGKILLed (the kernel then kills every child too).
type supervisor struct {
	mu       sync.Mutex
	children []*child
	exited   chan *child
	stopping bool
}

func newSupervisor() *supervisor {
	return &supervisor{exited: make(chan *child, 8)}
}

// prefixWriter writes each line of a component's output to w as "[name] line".
type prefixWriter struct {
	mu     *sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

var outputMu sync.Mutex

// ansiEscape matches terminal colour codes (kine's logrus output has them): journald shows
// them as garbage.
var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*[A-Za-z]")

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			break
		}
		p.mu.Lock()
		_, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, ansiEscape.ReplaceAll(p.buf[:i], nil))
		p.mu.Unlock()
		p.buf = p.buf[i+1:]
		if err != nil {
			return len(b), nil // never let a broken log sink kill a component
		}
	}
	return len(b), nil
}

// childEnv is our environment minus what must not leak into the components: NOTIFY_SOCKET
// belongs to this process alone (only we may tell systemd we are ready).
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NOTIFY_SOCKET=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

func (s *supervisor) start(name, path string, args []string) error {
	cmd := exec.Command(path, args...)
	cmd.Env = childEnv()
	cmd.Stdin = nil
	cmd.Stdout = &prefixWriter{mu: &outputMu, w: os.Stdout, prefix: "[" + name + "] "}
	cmd.Stderr = &prefixWriter{mu: &outputMu, w: os.Stderr, prefix: "[" + name + "] "}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	logf("starting %s %s", path, strings.Join(args, " "))
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c := &child{name: name, cmd: cmd, done: make(chan struct{})}
	s.mu.Lock()
	s.children = append(s.children, c)
	s.mu.Unlock()
	go func() {
		c.err = cmd.Wait()
		close(c.done)
		s.exited <- c
	}()
	return nil
}

// stop sends SIGTERM to every running component, waits up to grace for them to exit, then
// SIGKILLs what is left and waits for it.
func (s *supervisor) stop(grace time.Duration) {
	s.mu.Lock()
	s.stopping = true
	children := append([]*child(nil), s.children...)
	s.mu.Unlock()
	// Reverse start order: kube-controller-manager, then kube-apiserver, then kine (storage
	// last, so the API server is not left without it while it drains). One shared deadline.
	deadline := time.After(grace)
	expired := false
	for i := len(children) - 1; i >= 0; i-- {
		c := children[i]
		select {
		case <-c.done:
			continue
		default:
		}
		if expired {
			break
		}
		logf("stopping %s (pid %d)", c.name, c.cmd.Process.Pid)
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.done:
		case <-deadline:
			expired = true
		}
	}
	for _, c := range children {
		select {
		case <-c.done:
		default:
			logf("%s did not stop within %s; killing it", c.name, grace)
			_ = c.cmd.Process.Kill()
			<-c.done
		}
	}
}

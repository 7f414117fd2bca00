package main

import (
	"net"
	"os"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/bastion-bank/bastion/platform/benchcpu"
)

// BenchmarkWakeup measures what one hop between two processes costs on the
// machine itself, with none of Bastion's code in it: a 300-byte message
// over loopback TCP to a child process (this test binary started again with
// echoEnv set) and its echo back. Back to back, neither process sleeps
// between messages, as under saturation; with a pause between messages, as
// at low load, both are asleep when a message arrives and each hop wakes
// the other. A request through the stack makes about five such hops
// (client, gateway, service, database and back), so their cost is the
// floor of a request's latency and CPU at low load (docs/performance.md,
// "Fourth round").
//
// rtt-ns is the wall time of a round trip (the pause excluded); cpu-ns/op
// is this process's CPU per round trip and child-cpu-ns/op the echoing
// child's, both from getrusage, the pause's timer included in the first.
//
//	go test -run '^$' -bench BenchmarkWakeup -count 6 ./loadtest/cmd/benche2e/
func BenchmarkWakeup(b *testing.B) {
	// A pause shorter than a millisecond sleeps about one on the
	// development VM (its timer), so 1 ms is the shortest that means it.
	for _, pause := range []time.Duration{0, time.Millisecond} {
		b.Run("pause="+pause.String(), func(b *testing.B) { benchWakeup(b, pause) })
	}
}

// echoEnv, set to an address, makes the test binary a child that dials it
// and echoes what it reads until the connection closes.
const echoEnv = "BENCHE2E_ECHO_TO"

func echo(addr string) {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		os.Exit(1)
	}
	buf := make([]byte, 4096)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func benchWakeup(b *testing.B, pause time.Duration) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	child := exec.Command(os.Args[0], "-test.run=^$")
	child.Env = append(os.Environ(), echoEnv+"="+ln.Addr().String())
	if err := child.Start(); err != nil {
		b.Fatal(err)
	}
	c, err := ln.Accept()
	if err != nil {
		b.Fatal(err)
	}
	msg, buf := make([]byte, 300), make([]byte, 4096)
	roundTrip := func() {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
		for got := 0; got < len(msg); {
			n, err := c.Read(buf)
			if err != nil {
				b.Fatal(err)
			}
			got += n
		}
	}
	for range 100 {
		roundTrip()
	}
	childBefore := childCPU(b)
	cpu := benchcpu.Time(b)
	var busy time.Duration
	for b.Loop() {
		if pause > 0 {
			time.Sleep(pause)
		}
		start := time.Now()
		roundTrip()
		busy += time.Since(start)
	}
	benchcpu.Report(b, cpu)
	c.Close()
	if err := child.Wait(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(busy.Nanoseconds())/float64(b.N), "rtt-ns")
	b.ReportMetric(float64(childCPU(b)-childBefore)/float64(b.N), "child-cpu-ns/op")
}

// childCPU is the CPU time of this process's children that have ended.
func childCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

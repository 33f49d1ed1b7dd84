// Peer echo server for the benchmark on Go's net package, one goroutine per connection:
// `GOMAXPROCS=1 go-echo` (the harness builds it into a temporary directory).
// Prints {"port","pid"} once listening, as bench/servers/* do; exits when stdin closes.
package main

import (
	"fmt"
	"io"
	"net"
	"os"
	"time"
)

func serve(c net.Conn) {
	defer c.Close()
	buf := make([]byte, 64*1024)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return // EOF, or a reset at the end of a run
		}
		if _, err := c.Write(buf[:n]); err != nil {
			return
		}
	}
}

func main() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Printf("{\"port\":%d,\"pid\":%d}\n", ln.Addr().(*net.TCPAddr).Port, os.Getpid())
	go func() {
		io.Copy(io.Discard, os.Stdin) // the harness's lines are not for peers
		os.Exit(0)
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			time.Sleep(time.Millisecond) // EMFILE and the like: retry soon, without spinning
			continue
		}
		go serve(c) // Go's TCPConn has TCP_NODELAY on by default
	}
}

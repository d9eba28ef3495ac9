// Command gateway is grpc-gateway (v1.6.4, Debian's golang-github-grpc-ecosystem-grpc-gateway-dev)
// in front of Panoptic's retriever: the peer `panoptic bench gateway` measures Panoptic's own
// gateway against. scripts/grpc-gateway/build generates panoptic/v1 from protos/ and builds
// it; it does not build on its own.
//
// Its JSON is the one Panoptic's gateway writes (lowerCamelCase names, fields at their default
// values included), so both answer the same bytes' worth of work.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/runtime"
	// Links the google.rpc error details (ErrorInfo, BadRequest, ...) into golang/protobuf's
	// registry, so that jsonpb can render the details the retriever's errors carry; without
	// it every such error becomes 500 "failed to marshal error message".
	_ "google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"

	panopticv1 "panoptic/v1"
)

func main() {
	host := flag.String("host", "127.0.0.1", "HTTP listen address (keep it on loopback)")
	port := flag.Int("port", 8080, "HTTP listen port (0: a free one, printed)")
	backend := flag.String("backend", "127.0.0.1:50052", "the retriever's gRPC address (plaintext)")
	flag.Parse()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mux := runtime.NewServeMux(
		runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.JSONPb{
			OrigName:     false,
			EmitDefaults: true,
		}),
	)
	opts := []grpc.DialOption{grpc.WithInsecure()}
	if err := panopticv1.RegisterRetrieverServiceHandlerFromEndpoint(ctx, mux, *backend, opts); err != nil {
		log.Fatalf("register RetrieverService: %v", err)
	}

	listener, err := net.Listen("tcp", net.JoinHostPort(*host, fmt.Sprint(*port)))
	if err != nil {
		log.Fatalf("listen: %v", err)
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		<-signals
		shutdown, done := context.WithTimeout(context.Background(), 5*time.Second)
		defer done()
		_ = server.Shutdown(shutdown)
		cancel()
	}()

	fmt.Printf("LISTENING %s -> %s\n", listener.Addr(), *backend)
	if err := server.Serve(listener); err != nil && err != http.ErrServerClosed {
		log.Fatalf("serve: %v", err)
	}
}

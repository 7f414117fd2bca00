// Command probe is the health check baked into Bastion's container images,
// which have no shell or curl:
//
//	probe grpc  ADDR PKI_DIR SELF SERVER [SERVICE]  gRPC health Check over mTLS, as SELF, of SERVER at ADDR
//	probe https URL CA_FILE                         GET URL trusting only CA_FILE; healthy on 200
//	probe file  PATH                                healthy when PATH exists (one-shot jobs)
//
// SERVICE is the health service name to ask about: none for readiness (the
// server's overall status, NOT_SERVING while a service waits for auth's
// revocation feed), "liveness" for liveness and start-up probes, which
// restart the process and so must not fail just because auth is down.
//
// It exits 0 when healthy and 1 otherwise, as Docker's HEALTHCHECK expects.
// The grpc check uses BANK_TRUST_DOMAIN (default bastion.local), as the
// services do.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/bastion-bank/bastion/platform/mtls"
)

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := run(ctx, os.Args, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "unhealthy:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, getenv func(string) string) error {
	switch {
	case (len(args) == 6 || len(args) == 7) && args[1] == "grpc":
		td := getenv("BANK_TRUST_DOMAIN")
		if td == "" {
			td = "bastion.local"
		}
		service := ""
		if len(args) == 7 {
			service = args[6]
		}
		return checkGRPC(ctx, args[2], args[3], args[4], args[5], service, td)
	case len(args) == 4 && args[1] == "https":
		return checkHTTPS(ctx, args[2], args[3])
	case len(args) == 3 && args[1] == "file":
		_, err := os.Stat(args[2])
		return err
	}
	return errors.New("usage: probe grpc ADDR PKI_DIR SELF SERVER [SERVICE] | probe https URL CA_FILE | probe file PATH")
}

func checkGRPC(ctx context.Context, addr, pkiDir, self, server, service, trustDomain string) error {
	src, err := mtls.NewSource(mtls.FilesIn(pkiDir, self), trustDomain)
	if err != nil {
		return err
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(src.ClientCredentials(server)))
	if err != nil {
		return err
	}
	defer conn.Close()
	resp, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: service})
	if err != nil {
		return err
	}
	if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("status %v", resp.GetStatus())
	}
	return nil
}

func checkHTTPS(ctx context.Context, url, caFile string) error {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return errors.New("no CA certificate")
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

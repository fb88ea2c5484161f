// Package sonicwire is the typed Go client of the Sonicwire voice service: the generated
// sonicwire.dev/go/sonicwirev1 stubs plus a thin layer for what generation cannot express: the
// Converse stream's rules (config first, pacing, playback reports, tool results), events as
// typed messages, and status errors carrying their google.rpc.ErrorInfo reason.
//
//	client, err := sonicwire.NewClient("voice.internal:50051", sonicwire.Options{APIKey: key})
//	conversation, err := client.Converse(ctx, sonicwire.SessionConfig(16000), nil)
//	for {
//		event, err := conversation.Recv()
//		if err == io.EOF { break }
//		switch e := event.(type) {
//		case *sonicwirev1.AudioOutput: speaker.Play(e.Audio)
//		case *sonicwirev1.Transcript:  fmt.Println(e.Role, e.Text)
//		}
//	}
package sonicwire

import (
	"context"
	"crypto/tls"
	"net"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"

	pb "sonicwire.dev/go/sonicwirev1"
)

// Options configure a Client. The zero value is usable.
type Options struct {
	// APIKey is sent as x-api-key metadata on every call.
	APIKey string
	// TLS verifies the server (RootCAs, ServerName) and, with Certificates, authenticates the
	// client (mutual TLS). Nil: plaintext for loopback targets, TLS with the system roots
	// otherwise.
	TLS *tls.Config
	// Insecure forces plaintext.
	Insecure bool
	// Timeout bounds unary calls and the wait for SessionStarted; default 10 s.
	Timeout time.Duration
	// Retry is the connection retry policy; the zero value means DefaultRetry.
	Retry RetryPolicy
	// DialOptions are added to the connection's options.
	DialOptions []grpc.DialOption
}

// Client is a connection to a Sonicwire server. It is safe for concurrent use.
type Client struct {
	conn    *grpc.ClientConn
	rpc     pb.VoiceServiceClient
	apiKey  string
	timeout time.Duration
	retry   RetryPolicy
}

func isLoopback(target string) bool {
	host, _, err := net.SplitHostPort(strings.TrimPrefix(target, "dns:///"))
	if err != nil {
		host = target
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// NewClient prepares a connection to target ("host:port" or any gRPC target). It does not
// wait for the server: the first call connects.
func NewClient(target string, opts Options) (*Client, error) {
	dial := []grpc.DialOption{}
	switch {
	case opts.Insecure:
		dial = append(dial, grpc.WithInsecure())
	case opts.TLS != nil:
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(opts.TLS)))
	case isLoopback(target) || strings.HasPrefix(target, "unix:"):
		dial = append(dial, grpc.WithInsecure())
	default:
		dial = append(dial, grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{})))
	}
	conn, err := grpc.Dial(target, append(dial, opts.DialOptions...)...)
	if err != nil {
		return nil, err
	}
	client := &Client{conn: conn, rpc: pb.NewVoiceServiceClient(conn), apiKey: opts.APIKey,
		timeout: opts.Timeout, retry: opts.Retry}
	if client.timeout <= 0 {
		client.timeout = 10 * time.Second
	}
	if client.retry.MaxAttempts <= 0 {
		client.retry = DefaultRetry
	}
	return client, nil
}

// Close closes the connection.
func (c *Client) Close() error { return c.conn.Close() }

// RPC is the generated stub, for calls the thin layer does not wrap.
func (c *Client) RPC() pb.VoiceServiceClient { return c.rpc }

func (c *Client) outgoing(ctx context.Context) context.Context {
	if c.apiKey == "" {
		return ctx
	}
	return metadata.AppendToOutgoingContext(ctx, "x-api-key", c.apiKey)
}

func (c *Client) unary(ctx context.Context, call func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(c.outgoing(ctx), c.timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	return withRetries(ctx, c.retry, deadline, func(int) error { return FromStatus(call(ctx)) })
}

// ListVoices lists the voices of backend ("" for the server's configured backend).
func (c *Client) ListVoices(ctx context.Context, backend string) ([]*pb.Voice, error) {
	var reply *pb.ListVoicesResponse
	err := c.unary(ctx, func(ctx context.Context) (err error) {
		reply, err = c.rpc.ListVoices(ctx, &pb.ListVoicesRequest{Backend: backend})
		return err
	})
	return reply.GetVoices(), err
}

// ListTools lists the server-side tools a session can use.
func (c *Client) ListTools(ctx context.Context) ([]*pb.Tool, error) {
	var reply *pb.ListToolsResponse
	err := c.unary(ctx, func(ctx context.Context) (err error) {
		reply, err = c.rpc.ListTools(ctx, &pb.ListToolsRequest{})
		return err
	})
	return reply.GetTools(), err
}

// SessionConfig is a configuration for PCM s16le mono input at sampleRateHz; set any other
// field on the result.
func SessionConfig(sampleRateHz int) *pb.SessionConfig {
	return &pb.SessionConfig{InputFormat: &pb.AudioFormat{
		Encoding: pb.AudioEncoding_AUDIO_ENCODING_PCM_S16LE, SampleRateHz: int32(sampleRateHz), Channels: 1,
	}}
}

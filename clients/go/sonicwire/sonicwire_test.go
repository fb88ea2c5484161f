package sonicwire

// Unit tests of the thin layer against a scripted Converse stream (no network): the stream
// rules (config first, SessionStarted first, retries only before it, half-close after tool
// results), the messages each send produces, error decoding and the WAV helpers. Run by
// tests/sdks/test_units.py (`scripts/go test sonicwire.dev/go/sonicwire`); the live-server
// tests are in tests/sdks.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "sonicwire.dev/go/sonicwirev1"
)

// fakeStream is one scripted Converse call: it records what the client sends and returns the
// responses the script pushes.
type fakeStream struct {
	grpc.ClientStream
	mu         sync.Mutex
	sent       []*pb.ConverseRequest
	halfClosed bool
	responses  chan *pb.ConverseResponse
	end        chan error // the status the stream ends with (nil: io.EOF)
	ctx        context.Context
}

func newStream(ctx context.Context) *fakeStream {
	return &fakeStream{responses: make(chan *pb.ConverseResponse, 16), end: make(chan error, 1), ctx: ctx}
}

func (s *fakeStream) Send(m *pb.ConverseRequest) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sent = append(s.sent, m)
	return nil
}

func (s *fakeStream) CloseSend() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.halfClosed = true
	return nil
}

func (s *fakeStream) Recv() (*pb.ConverseResponse, error) {
	select {
	case r := <-s.responses:
		return r, nil
	case err := <-s.end:
		if err == nil {
			err = io.EOF
		}
		return nil, err
	case <-s.ctx.Done():
		return nil, status.Error(codes.Canceled, "cancelled")
	}
}

func (s *fakeStream) requests() []*pb.ConverseRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*pb.ConverseRequest(nil), s.sent...)
}

// fakeRPC opens the scripted streams in turn; an error in opens fails that attempt.
type fakeRPC struct {
	pb.VoiceServiceClient
	opens   []func(ctx context.Context) (*fakeStream, error)
	streams []*fakeStream
	apiKeys []string
}

func (f *fakeRPC) Converse(ctx context.Context, _ ...grpc.CallOption) (pb.VoiceService_ConverseClient, error) {
	md, _ := metadata.FromOutgoingContext(ctx)
	f.apiKeys = append(f.apiKeys, strings.Join(md.Get("x-api-key"), ","))
	stream, err := f.opens[len(f.streams)](ctx)
	f.streams = append(f.streams, stream)
	if err != nil {
		return nil, err
	}
	return stream, nil
}

func started(id string) *pb.ConverseResponse {
	return &pb.ConverseResponse{Response: &pb.ConverseResponse_SessionStarted{SessionStarted: &pb.SessionStarted{SessionId: id}}}
}

func testClient(rpc *fakeRPC) *Client {
	return &Client{rpc: rpc, apiKey: "k", timeout: time.Second,
		retry: RetryPolicy{MaxAttempts: 3, InitialDelay: time.Millisecond, MaxDelay: time.Millisecond}}
}

func startedStream(id string) func(ctx context.Context) (*fakeStream, error) {
	return func(ctx context.Context) (*fakeStream, error) {
		s := newStream(ctx)
		s.responses <- started(id)
		return s, nil
	}
}

func TestConfigFirstSendsAndHalfClose(t *testing.T) {
	rpc := &fakeRPC{opens: []func(context.Context) (*fakeStream, error){startedStream("s1")}}
	cv, err := testClient(rpc).Converse(context.Background(), SessionConfig(24000), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cv.Close()
	if cv.SessionID() != "s1" || rpc.apiKeys[0] != "k" {
		t.Fatalf("session %q, api key %q", cv.SessionID(), rpc.apiKeys[0])
	}
	event, err := cv.Recv()
	if _, ok := event.(*pb.SessionStarted); !ok || err != nil {
		t.Fatalf("first event %T %v", event, err)
	}
	must(t, cv.SendAudio([]byte{1, 2, 3, 4}))
	must(t, cv.ReportPlayback("t1", 1234*time.Millisecond))
	must(t, cv.SendText("hi"))
	must(t, cv.EndInput())
	if err := cv.SendText("late"); !errors.Is(err, ErrConversationClosed) {
		t.Fatalf("send after EndInput: %v", err)
	}
	stream := rpc.streams[0]
	sent := stream.requests()
	if len(sent) != 4 || sent[0].GetConfig().GetInputFormat().GetSampleRateHz() != 24000 ||
		string(sent[1].GetAudio().GetAudio()) != "\x01\x02\x03\x04" ||
		sent[2].GetPlayback().GetTurnId() != "t1" || sent[2].GetPlayback().GetPlayedMs() != 1234 ||
		sent[3].GetText().GetText() != "hi" || !stream.halfClosed {
		t.Fatalf("requests %v half-closed %v", sent, stream.halfClosed)
	}
	stream.end <- nil
	if _, err := cv.Recv(); err != io.EOF {
		t.Fatalf("end of stream: %v", err)
	}
}

func TestRetriesOnlyBeforeSessionStarted(t *testing.T) {
	unavailable := func(context.Context) (*fakeStream, error) {
		return nil, status.Error(codes.Unavailable, "connection refused")
	}
	rpc := &fakeRPC{opens: []func(context.Context) (*fakeStream, error){unavailable, startedStream("s2")}}
	cv, err := testClient(rpc).Converse(context.Background(), nil, nil)
	if err != nil || cv.Attempts != 2 {
		t.Fatalf("converse: %v after %d attempts", err, cv.Attempts)
	}
	_, _ = cv.Recv()
	rpc.streams[1].end <- status.Error(codes.Unavailable, "backend gone")
	if _, err := cv.Recv(); !IsCode(err, codes.Unavailable) {
		t.Fatalf("after start: %v", err)
	}
	if len(rpc.streams) != 2 {
		t.Fatalf("a started conversation was reopened: %d streams", len(rpc.streams))
	}
	if err := cv.SendText("x"); !IsCode(err, codes.Unavailable) {
		t.Fatalf("send after the error: %v", err)
	}

	always := &fakeRPC{opens: []func(context.Context) (*fakeStream, error){unavailable, unavailable, unavailable, unavailable}}
	if _, err := testClient(always).Converse(context.Background(), nil, nil); !IsCode(err, codes.Unavailable) || len(always.streams) != 3 {
		t.Fatalf("%v after %d attempts", err, len(always.streams))
	}
	invalid := &fakeRPC{opens: []func(context.Context) (*fakeStream, error){func(context.Context) (*fakeStream, error) {
		return nil, status.Error(codes.InvalidArgument, "bad")
	}, unavailable}}
	if _, err := testClient(invalid).Converse(context.Background(), nil, nil); !IsCode(err, codes.InvalidArgument) || len(invalid.streams) != 1 {
		t.Fatalf("%v after %d attempts", err, len(invalid.streams))
	}
}

func TestStartTimeoutAndProtocolError(t *testing.T) {
	silent := &fakeRPC{opens: []func(context.Context) (*fakeStream, error){func(ctx context.Context) (*fakeStream, error) {
		return newStream(ctx), nil
	}}}
	client := testClient(silent)
	client.timeout = 50 * time.Millisecond
	if _, err := client.Converse(context.Background(), nil, nil); !IsCode(err, codes.DeadlineExceeded) {
		t.Fatalf("no SessionStarted: %v", err)
	}
	wrong := &fakeRPC{opens: []func(context.Context) (*fakeStream, error){func(ctx context.Context) (*fakeStream, error) {
		s := newStream(ctx)
		s.responses <- &pb.ConverseResponse{Response: &pb.ConverseResponse_Usage{Usage: &pb.Usage{}}}
		return s, nil
	}}}
	if _, err := testClient(wrong).Converse(context.Background(), nil, nil); !errors.Is(err, ErrProtocol) {
		t.Fatalf("first message not SessionStarted: %v", err)
	}
}

func TestClientToolsAnsweredBeforeHalfClose(t *testing.T) {
	tools := map[string]ClientTool{
		"lookup": {Description: "Look up.", Examples: []string{"look up {id}"}, AnswerTemplate: "Found {id}.", Handler: func(_ context.Context, args map[string]interface{}) (interface{}, error) {
			time.Sleep(20 * time.Millisecond) // still running when EndInput is called
			return map[string]interface{}{"id": args["id"], "ok": true}, nil
		}},
		"fails": {Handler: func(context.Context, map[string]interface{}) (interface{}, error) {
			return nil, errors.New("broken")
		}},
	}
	rpc := &fakeRPC{opens: []func(context.Context) (*fakeStream, error){startedStream("s")}}
	cv, err := testClient(rpc).Converse(context.Background(), nil, tools)
	if err != nil {
		t.Fatal(err)
	}
	defer cv.Close()
	stream := rpc.streams[0]
	declared := map[string]string{}
	for _, d := range stream.requests()[0].GetConfig().GetClientTools() {
		declared[d.Name] = d.ParametersJsonSchema
		if d.Name == "lookup" && (strings.Join(d.Examples, "|") != "look up {id}" || d.AnswerTemplate != "Found {id}.") {
			t.Fatalf("examples %q, template %q", d.Examples, d.AnswerTemplate)
		}
	}
	if len(declared) != 2 || declared["lookup"] != `{"type":"object"}` {
		t.Fatalf("declared tools %v", declared)
	}
	client := pb.ToolExecutor_TOOL_EXECUTOR_CLIENT
	for _, call := range []*pb.ToolCall{
		{Id: "c1", Name: "lookup", ArgumentsJson: `{"id": 7}`, Executor: client},
		{Id: "c2", Name: "fails", ArgumentsJson: `{}`, Executor: client},
		{Id: "c3", Name: "lookup", Executor: pb.ToolExecutor_TOOL_EXECUTOR_SERVER},
	} {
		stream.responses <- &pb.ConverseResponse{Response: &pb.ConverseResponse_ToolCall{ToolCall: call}}
	}
	for i := 0; i < 4; i++ {
		if _, err := cv.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	must(t, cv.EndInput()) // waits for both handlers
	results := map[string]string{}
	for _, r := range stream.requests() {
		if tr := r.GetToolResult(); tr != nil {
			results[tr.ToolCallId] = map[bool]string{true: "error ", false: ""}[tr.IsError] + tr.Content
		}
	}
	want := map[string]string{"c1": `{"id":7,"ok":true}`, "c2": `error {"error":"broken"}`}
	if len(results) != 2 || results["c1"] != want["c1"] || results["c2"] != want["c2"] || !stream.halfClosed {
		t.Fatalf("tool results %v, half-closed %v", results, stream.halfClosed)
	}
	if _, err := (ClientTool{}).Definition("1bad"); err == nil {
		t.Fatal("an invalid tool name was accepted")
	}
}

func TestErrorInfoReason(t *testing.T) {
	st, err := status.New(codes.InvalidArgument, "no voice 'x'").WithDetails(
		&errdetails.ErrorInfo{Reason: "VOICE_UNKNOWN", Domain: "sonicwire.dev", Metadata: map[string]string{"voice": "x"}})
	must(t, err)
	var e *Error
	if !errors.As(FromStatus(st.Err()), &e) || e.Code != codes.InvalidArgument || e.Reason != "VOICE_UNKNOWN" ||
		e.Domain != "sonicwire.dev" || e.Metadata["voice"] != "x" {
		t.Fatalf("decoded %#v", e)
	}
	if e.Error() != "INVALID_ARGUMENT VOICE_UNKNOWN: no voice 'x'" || status.Code(e) != codes.InvalidArgument {
		t.Fatalf("%q / %v", e.Error(), status.Code(e))
	}
	if CodeName(codes.Canceled) != "CANCELLED" || CodeName(codes.DeadlineExceeded) != "DEADLINE_EXCEEDED" {
		t.Fatal(CodeName(codes.Canceled), CodeName(codes.DeadlineExceeded))
	}
}

func wav(rate uint32, channels, bits uint16, samples ...int16) []byte {
	data := make([]byte, 2*len(samples))
	for i, s := range samples {
		binary.LittleEndian.PutUint16(data[2*i:], uint16(s))
	}
	out := EncodeWAV(PCM{Data: data, SampleRateHz: int(rate)})
	binary.LittleEndian.PutUint16(out[22:], channels)
	binary.LittleEndian.PutUint16(out[34:], bits)
	return out
}

func TestWAV(t *testing.T) {
	mono, err := ParseWAV(wav(16000, 1, 16, 1, -2, 300, -32768), "mono")
	must(t, err)
	if mono.SampleRateHz != 16000 || string(mono.Data) != string(wav(16000, 1, 16, 1, -2, 300, -32768)[44:]) {
		t.Fatalf("mono %v", mono)
	}
	stereo, err := ParseWAV(wav(48000, 2, 16, 100, 300, -100, -301), "stereo")
	must(t, err)
	if got := []int16{int16(binary.LittleEndian.Uint16(stereo.Data)), int16(binary.LittleEndian.Uint16(stereo.Data[2:]))}; got[0] != 200 || got[1] != -201 {
		t.Fatalf("mixed down to %v", got) // the mean, rounded down as in the other clients
	}
	for name, bad := range map[string][]byte{
		"11025 Hz": wav(11025, 1, 16, 0), "8-bit": wav(16000, 1, 8, 0), "not a WAV": []byte("not a wav file at all"),
	} {
		if _, err := ParseWAV(bad, name); !errors.Is(err, ErrAudioFormat) || !strings.Contains(err.Error(), name) {
			t.Errorf("%s: %v", name, err)
		}
	}
	chunks := Chunks(PCM{Data: make([]byte, 16000*2/5+2), SampleRateHz: 16000}, 20)
	if len(chunks) != 11 || len(chunks[0]) != 640 || len(chunks[10]) != 2 {
		t.Fatalf("%d chunks", len(chunks))
	}
	var sent []time.Duration
	start := time.Now()
	ms, err := StreamAudio(context.Background(), sinkFunc(func([]byte) error { sent = append(sent, time.Since(start)); return nil }),
		PCM{Data: make([]byte, 16000*2/5), SampleRateHz: 16000}, 20, 2)
	must(t, err)
	for i, at := range sent {
		if at < time.Duration(i)*10*time.Millisecond { // never early
			t.Fatalf("chunk %d sent at %v", i, at)
		}
	}
	if ms != 200 || len(sent) != 10 {
		t.Fatalf("%d ms in %d chunks", ms, len(sent))
	}
}

type sinkFunc func([]byte) error

func (f sinkFunc) SendAudio(b []byte) error { return f(b) }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

package sonicwire

import (
	"context"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	pb "sonicwire.dev/go/sonicwirev1"
)

// Event is one server event: the message inside ConverseResponse's oneof, e.g.
// *sonicwirev1.SessionStarted, *sonicwirev1.AudioOutput, *sonicwirev1.Transcript,
// *sonicwirev1.ToolCall, *sonicwirev1.TurnComplete. Switch on its type. Kinds added to the
// proto later arrive as their own message types once the code is regenerated.
type Event = proto.Message

// eventOf returns the message set in a response's oneof, or nil for an empty (or unknown) one.
// Reflection keeps this independent of the list of kinds, which grows with the proto.
func eventOf(response *pb.ConverseResponse) Event {
	message := response.ProtoReflect()
	field := message.WhichOneof(message.Descriptor().Oneofs().ByName("response"))
	if field == nil {
		return nil
	}
	return message.Get(field).Message().Interface()
}

// Conversation is a live Converse stream, created by Client.Converse with the session already
// started. Sends may be called from any goroutine; call Recv from one goroutine. Recv also
// answers ToolCalls for the client tools given to Converse.
type Conversation struct {
	stream  pb.VoiceService_ConverseClient
	cancel  context.CancelFunc
	ctx     context.Context
	session *pb.SessionStarted
	tools   map[string]ClientTool

	sendMu     sync.Mutex // the stream allows one sender at a time
	toolsWG    taskGroup
	mu         sync.Mutex
	inputEnded bool
	closed     bool
	finished   bool
	err        error
	delivered  bool

	// Attempts is how many times the stream was opened (1 unless a connection was retried).
	Attempts int
}

// Converse opens a conversation: it sends config (with tools declared in it), waits for
// SessionStarted and returns the started conversation. UNAVAILABLE before SessionStarted is
// retried with the client's policy; nothing is retried afterwards. ctx bounds the whole
// stream. Close the conversation when done.
func (c *Client) Converse(ctx context.Context, config *pb.SessionConfig, tools map[string]ClientTool) (*Conversation, error) {
	if config == nil {
		config = SessionConfig(16000)
	}
	config, err := DeclareTools(config, tools)
	if err != nil {
		return nil, err
	}
	conversation := &Conversation{tools: tools}
	deadline := time.Now().Add(c.timeout)
	err = withRetries(ctx, c.retry, deadline, func(attempt int) error {
		conversation.Attempts = attempt
		return conversation.open(c, ctx, config, time.Until(deadline))
	})
	if err != nil {
		return nil, err
	}
	return conversation, nil
}

func (cv *Conversation) open(c *Client, ctx context.Context, config *pb.SessionConfig, wait time.Duration) error {
	streamCtx, cancel := context.WithCancel(c.outgoing(ctx))
	var timedOut atomic.Bool
	timer := time.AfterFunc(wait, func() { timedOut.Store(true); cancel() })
	defer timer.Stop()
	stream, err := c.rpc.Converse(streamCtx)
	if err != nil {
		cancel()
		return FromStatus(err)
	}
	// A failed send means the stream already ended: Recv below returns its status.
	_ = stream.Send(&pb.ConverseRequest{Request: &pb.ConverseRequest_Config{Config: config}})
	first, err := stream.Recv()
	timer.Stop()
	switch {
	case timedOut.Load():
		cancel()
		return &Error{Code: codes.DeadlineExceeded, Message: fmt.Sprintf("no SessionStarted within %v", c.timeout)}
	case err == io.EOF:
		cancel()
		return protocolError("the server ended the stream before SessionStarted")
	case err != nil:
		cancel()
		return FromStatus(err)
	}
	started, ok := eventOf(first).(*pb.SessionStarted)
	if !ok {
		cancel()
		return protocolError("expected SessionStarted as the first message, got %T", eventOf(first))
	}
	cv.stream, cv.cancel, cv.ctx, cv.session = stream, cancel, streamCtx, started
	return nil
}

// Session is the SessionStarted event.
func (cv *Conversation) Session() *pb.SessionStarted { return cv.session }

// SessionID is the server-assigned session id.
func (cv *Conversation) SessionID() string { return cv.session.GetSessionId() }

// Done reports whether the stream has ended (all events read) or the conversation was closed.
func (cv *Conversation) Done() bool {
	cv.mu.Lock()
	defer cv.mu.Unlock()
	return cv.finished || cv.closed
}

// -- sending -------------------------------------------------------------------------------

func (cv *Conversation) send(request *pb.ConverseRequest, afterEnd bool) error {
	cv.mu.Lock()
	err, closed, ended := cv.err, cv.closed || cv.finished, cv.inputEnded
	cv.mu.Unlock()
	switch {
	case err != nil:
		return err
	case closed:
		return ErrConversationClosed
	case ended && !afterEnd:
		return fmt.Errorf("%w: input already ended (EndInput was called)", ErrConversationClosed)
	}
	cv.sendMu.Lock()
	defer cv.sendMu.Unlock()
	if err := cv.stream.Send(request); err != nil {
		// io.EOF: the server ended the stream; Recv returns why.
		return ErrConversationClosed
	}
	return nil
}

// SendAudio sends microphone audio: PCM s16le in the session's input format, at most
// Session().Limits.MaxAudioChunkBytes (65536) bytes.
func (cv *Conversation) SendAudio(audio []byte) error {
	return cv.send(&pb.ConverseRequest{Request: &pb.ConverseRequest_Audio{Audio: &pb.AudioInput{Audio: audio}}}, false)
}

// SendText sends a typed user turn (at most 4096 UTF-8 bytes).
func (cv *Conversation) SendText(text string) error {
	return cv.send(&pb.ConverseRequest{Request: &pb.ConverseRequest_Text{Text: &pb.TextInput{Text: text}}}, false)
}

// ReportPlayback tells the server how much of a turn's audio has actually been played; the
// server aligns echo cancellation with it and truncates the history on interruptions.
func (cv *Conversation) ReportPlayback(turnID string, played time.Duration) error {
	update := &pb.PlaybackUpdate{TurnId: turnID, PlayedMs: played.Milliseconds()}
	return cv.send(&pb.ConverseRequest{Request: &pb.ConverseRequest_Playback{Playback: update}}, false)
}

// SendToolResult answers a ToolCall whose executor is CLIENT (only needed for tools without a
// handler in Converse).
func (cv *Conversation) SendToolResult(toolCallID, content string, isError bool) error {
	result := &pb.ToolResult{ToolCallId: toolCallID, Content: content, IsError: isError}
	return cv.send(&pb.ConverseRequest{Request: &pb.ConverseRequest_ToolResult{ToolResult: result}}, true)
}

// EndInput half-closes: the server ends the stream after its current turn. It first waits for
// running tool handlers (a half-closed stream cannot carry their results). Idempotent.
func (cv *Conversation) EndInput() error {
	cv.mu.Lock()
	if cv.inputEnded {
		cv.mu.Unlock()
		return nil
	}
	cv.inputEnded = true
	cv.mu.Unlock()
	cv.toolsWG.Wait()
	cv.sendMu.Lock()
	defer cv.sendMu.Unlock()
	return cv.stream.CloseSend()
}

// Close hangs up: the stream is cancelled if still open. Safe to call more than once.
func (cv *Conversation) Close() {
	cv.mu.Lock()
	cv.closed = true
	cv.mu.Unlock()
	cv.cancel()
}

// -- receiving -----------------------------------------------------------------------------

// Recv returns the next event: SessionStarted first, then the server's events in order. It
// returns io.EOF once the server ended the stream normally (or the conversation was closed),
// and an *Error with the status and ErrorInfo reason when it ended with an error.
func (cv *Conversation) Recv() (Event, error) {
	cv.mu.Lock()
	if !cv.delivered {
		cv.delivered = true
		cv.mu.Unlock()
		return cv.session, nil
	}
	cv.mu.Unlock()
	for {
		if cv.Done() {
			return nil, io.EOF
		}
		response, err := cv.stream.Recv()
		if err != nil {
			cv.mu.Lock()
			defer cv.mu.Unlock()
			cv.finished = true
			if err == io.EOF || cv.closed {
				return nil, io.EOF
			}
			cv.err = FromStatus(err)
			return nil, cv.err
		}
		event := eventOf(response)
		if event == nil {
			continue // a kind from a newer server
		}
		if call, ok := event.(*pb.ToolCall); ok {
			cv.dispatchTool(call)
		}
		return event, nil
	}
}

func (cv *Conversation) dispatchTool(call *pb.ToolCall) {
	tool, ok := cv.tools[call.Name]
	if call.Executor != pb.ToolExecutor_TOOL_EXECUTOR_CLIENT || !ok || tool.Handler == nil {
		return // a server tool, or one the application answers with SendToolResult
	}
	cv.toolsWG.Add(1)
	go func() {
		defer cv.toolsWG.Done()
		content, isError := RunTool(cv.ctx, tool, call.ArgumentsJson)
		// A failed send means the stream ended; Recv reports why.
		_ = cv.SendToolResult(call.Id, content, isError)
	}()
}

// taskGroup counts running tool handlers. Unlike sync.WaitGroup it allows Add while another
// goroutine waits (a tool call can arrive while EndInput waits for the earlier ones).
type taskGroup struct {
	mu      sync.Mutex
	running int
	idle    *sync.Cond
}

func (g *taskGroup) Add(n int) {
	g.mu.Lock()
	g.running += n
	if g.running == 0 && g.idle != nil {
		g.idle.Broadcast()
	}
	g.mu.Unlock()
}

func (g *taskGroup) Done() { g.Add(-1) }

func (g *taskGroup) Wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.idle == nil {
		g.idle = sync.NewCond(&g.mu)
	}
	for g.running > 0 {
		g.idle.Wait()
	}
}

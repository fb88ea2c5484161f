package sonicwire

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"sync"
	"time"

	"google.golang.org/protobuf/proto"

	pb "sonicwire.dev/go/sonicwirev1"
)

// TalkOptions describe one exchange for Talk. Zero values mean the defaults.
type TalkOptions struct {
	// Audio is microphone audio; the session's input rate is set to its rate.
	Audio *PCM
	// Text is a typed user turn, sent before the audio ("" for none).
	Text string
	// Config is the session configuration; nil for SessionConfig(audio rate).
	Config *pb.SessionConfig
	// Tools are client tools, as for Client.Converse.
	Tools map[string]ClientTool
	// Speed paces the audio: 1 (the default) is real time, 2 twice as fast.
	Speed float64
	// Unpaced sends the audio as fast as possible.
	Unpaced bool
	// ChunkMs is the audio chunk length; default 20.
	ChunkMs int
	// TrailingSilence is sent after the audio so the server's voice activity detector sees the
	// end of speech; default 1 s, negative for none.
	TrailingSilence time.Duration
	// ReplyTimeout is the longest wait for an answer before half-closing; default 30 s.
	ReplyTimeout time.Duration
	// HearTimeout is, after audio with signal, the longest wait for the server to report the
	// user's speech before concluding it heard none; default 2 s.
	HearTimeout time.Duration
	// OnEvent is called with every event as it arrives.
	OnEvent func(Event)
}

// TalkResult is what came back from Talk.
type TalkResult struct {
	Session *pb.SessionStarted
	// Events are every event in arrival order, SessionStarted first.
	Events []Event
	// Reply is the assistant's audio, in the session's output format.
	Reply PCM
	// SentMs is the milliseconds of audio sent (trailing silence included).
	SentMs int
}

// Text is the final transcripts of one side, joined by spaces.
func (r *TalkResult) Text(role pb.Role) string {
	var parts []string
	for _, event := range r.Events {
		if t, ok := event.(*pb.Transcript); ok && t.Final && t.Role == role {
			parts = append(parts, t.Text)
		}
	}
	return strings.Join(parts, " ")
}

const signalPeak = 500 // about -36 dBFS: anything quieter is not worth waiting for an answer to

func hasSignal(pcm []byte) bool {
	for at := 0; at+1 < len(pcm); at += 2 {
		sample := int16(binary.LittleEndian.Uint16(pcm[at:]))
		if sample > signalPeak || sample < -signalPeak {
			return true
		}
	}
	return false
}

// flag is a resettable event: wait returns once it is raised (or on timeout).
type flag struct {
	mu     sync.Mutex
	raised bool
	ch     chan struct{}
}

func newFlag(raised bool) *flag {
	f := &flag{raised: raised, ch: make(chan struct{})}
	if raised {
		close(f.ch)
	}
	return f
}

func (f *flag) clear() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.raised {
		f.raised, f.ch = false, make(chan struct{})
	}
}

func (f *flag) raise() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.raised {
		f.raised = true
		close(f.ch)
	}
}

func (f *flag) isRaised() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.raised
}

func (f *flag) wait(timeout time.Duration) {
	f.mu.Lock()
	ch := f.ch
	f.mu.Unlock()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-ch:
	case <-timer.C:
	}
}

func orDefault(value, fallback time.Duration) time.Duration {
	if value == 0 {
		return fallback
	}
	return value
}

// Talk runs one exchange, as `sonicwire talk` does: it sends the typed turn, then streams the
// audio at real time followed by trailing silence, waits for the assistant to answer each (a
// TurnComplete other than for tool use, at most ReplyTimeout), half-closes and reads the stream
// to its end. It returns every event and the reply audio, or the *Error the stream ended with.
func Talk(ctx context.Context, client *Client, opts TalkOptions) (*TalkResult, error) {
	if opts.Audio == nil && opts.Text == "" {
		return nil, errors.New("sonicwire: Talk needs audio, text or both")
	}
	config := opts.Config
	if config == nil {
		rate := 16000
		if opts.Audio != nil {
			rate = opts.Audio.SampleRateHz
		}
		config = SessionConfig(rate)
	} else if opts.Audio != nil {
		// The audio's own rate wins: sending it at another declared rate would garble it.
		config = proto.Clone(config).(*pb.SessionConfig)
		config.InputFormat = SessionConfig(opts.Audio.SampleRateHz).InputFormat
	}
	replyTimeout := orDefault(opts.ReplyTimeout, 30*time.Second)
	hearTimeout := orDefault(opts.HearTimeout, 2*time.Second)
	trailing := orDefault(opts.TrailingSilence, time.Second)
	chunkMs := opts.ChunkMs
	if chunkMs <= 0 {
		chunkMs = 20
	}
	speed := opts.Speed
	if speed <= 0 {
		speed = 1
	}
	if opts.Unpaced {
		speed = 0
	}

	conversation, err := client.Converse(ctx, config, opts.Tools)
	if err != nil {
		return nil, err
	}
	defer conversation.Close()
	answered, heard := newFlag(true), newFlag(false)
	result := &TalkResult{Session: conversation.Session()}
	sendCtx, stopSending := context.WithCancel(ctx)
	defer stopSending()
	senderDone := make(chan struct{})
	go func() {
		defer close(senderDone)
		// Send errors mean the stream ended: the reading side reports its status.
		if opts.Text != "" {
			answered.clear()
			if conversation.SendText(opts.Text) != nil {
				return
			}
			answered.wait(replyTimeout)
		}
		if opts.Audio != nil {
			padded := PCM{SampleRateHz: opts.Audio.SampleRateHz, Data: opts.Audio.Data}
			if trailing > 0 {
				silence := Silence(int(trailing/time.Millisecond), padded.SampleRateHz)
				padded.Data = append(append([]byte(nil), opts.Audio.Data...), silence...)
			}
			sent, err := StreamAudio(sendCtx, conversation, padded, chunkMs, speed)
			result.SentMs = sent
			if err != nil {
				return
			}
			if hasSignal(opts.Audio.Data) && !heard.isRaised() {
				// The server may lag behind audio sent faster than real time: give it a moment
				// to report the user's speech before deciding nobody spoke.
				heard.wait(hearTimeout)
			}
			answered.wait(replyTimeout)
		}
		_ = conversation.EndInput()
	}()

	var reply []byte
	var recvErr error
	for {
		event, err := conversation.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			recvErr = err
			break
		}
		result.Events = append(result.Events, event)
		switch e := event.(type) {
		case *pb.AudioOutput:
			reply = append(reply, e.Audio...)
		case *pb.SpeechActivity:
			if e.Kind == pb.SpeechActivityKind_SPEECH_ACTIVITY_KIND_STARTED {
				answered.clear()
				heard.raise()
			}
		case *pb.Transcript:
			if e.Role == pb.Role_ROLE_USER {
				answered.clear()
				heard.raise()
			}
		case *pb.TurnComplete:
			if e.StopReason != pb.StopReason_STOP_REASON_TOOL_USE {
				answered.raise()
			}
		}
		if opts.OnEvent != nil {
			opts.OnEvent(event)
		}
	}
	// Unblock and stop the sender, then wait for it (it owns result.SentMs).
	stopSending()
	conversation.Close()
	answered.raise()
	heard.raise()
	<-senderDone
	if recvErr != nil {
		return nil, recvErr
	}
	rate := int(result.Session.GetConfig().GetOutputFormat().GetSampleRateHz())
	if rate == 0 {
		rate = 16000 // the server fills it in; 16000 when unset
	}
	result.Reply = PCM{Data: reply, SampleRateHz: rate}
	return result, nil
}

// Command talk talks to a Sonicwire server from Go: it streams a WAV file at real time (and/or
// sends a typed turn), prints what happens and saves the assistant's reply.
//
//	scripts/go run ./clients/go/examples/talk question.wav -target HOST:PORT -api-key KEY -out reply.wav
//	scripts/go run ./clients/go/examples/talk -text "What time is it?" -json
//
// (scripts/go is Debian's go in GOPATH mode; see clients/go/README.md.) Exit codes match the
// Python `sonicwire talk`: 0 ok, 1 other error status, 2 usage or WAV error, 3 unavailable,
// 4 unauthenticated/permission denied, 5 resource exhausted, 6 deadline exceeded.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/encoding/protojson"

	"sonicwire.dev/go/sonicwire"
	pb "sonicwire.dev/go/sonicwirev1"
)

type options struct {
	target, apiKey, out, text, voice, ca, cert, key, serverName string
	noSave, useTLS, insecure, demoTool, json                    bool
	speed, trailingSilenceMs, replyTimeout, timeout             float64
	connectRetries                                              int
}

func env(name, fallback string) string {
	if value, ok := os.LookupEnv(name); ok {
		return value
	}
	return fallback
}

// parse reads flags and positional arguments in any order ("talk q.wav -target X" and
// "talk -target X q.wav"); the standard flag package stops at the first positional.
func parse(args []string) (options, []string, error) {
	var o options
	fs := flag.NewFlagSet("talk", flag.ContinueOnError)
	fs.StringVar(&o.target, "target", env("SONICWIRE_TARGET", "127.0.0.1:50051"), "server address host:port")
	fs.StringVar(&o.apiKey, "api-key", env("SONICWIRE_API_KEY", ""), "API key (x-api-key)")
	fs.StringVar(&o.out, "out", "reply.wav", "where to write the reply")
	fs.BoolVar(&o.noSave, "no-save", false, "do not write the reply")
	fs.StringVar(&o.text, "text", "", "a typed turn, sent before the audio")
	fs.StringVar(&o.voice, "voice", "", "voice id (see ListVoices)")
	fs.Float64Var(&o.speed, "speed", 1, "audio pacing: 1 real time, 0 as fast as possible")
	fs.Float64Var(&o.trailingSilenceMs, "trailing-silence", 1000, "ms of silence after the audio")
	fs.Float64Var(&o.replyTimeout, "reply-timeout", 30, "seconds to wait for each answer")
	fs.Float64Var(&o.timeout, "timeout", 10, "seconds to wait for the session to start")
	fs.IntVar(&o.connectRetries, "connect-retries", 3, "retries while the server is unavailable")
	fs.BoolVar(&o.useTLS, "tls", false, "use TLS with the system roots")
	fs.BoolVar(&o.insecure, "insecure", false, "plaintext even for a non-loopback target")
	fs.StringVar(&o.ca, "ca", "", "PEM CA to verify the server with")
	fs.StringVar(&o.cert, "cert", "", "PEM client certificate (mutual TLS)")
	fs.StringVar(&o.key, "key", "", "PEM client key (mutual TLS)")
	fs.StringVar(&o.serverName, "server-name", "", "name expected in the server's certificate")
	fs.BoolVar(&o.demoTool, "demo-tool", false, "offer the client tool get_weather, run here")
	fs.BoolVar(&o.json, "json", false, "print one JSON object per event")
	var positionals []string
	for {
		if err := fs.Parse(args); err != nil {
			return o, nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return o, positionals, nil
		}
		positionals, args = append(positionals, rest[0]), rest[1:]
	}
}

func tlsConfig(o options) (*tls.Config, error) {
	if o.ca == "" && o.cert == "" && o.serverName == "" && !o.useTLS {
		return nil, nil
	}
	config := &tls.Config{ServerName: o.serverName}
	if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, err
		}
		config.RootCAs = x509.NewCertPool()
		if !config.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", o.ca)
		}
	}
	if o.cert != "" {
		pair, err := tls.LoadX509KeyPair(o.cert, o.key)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

type printer struct {
	json    bool
	started time.Time
}

func (p printer) say(format string, args ...interface{}) {
	if !p.json {
		fmt.Printf("[%7.3fs] %s\n", time.Since(p.started).Seconds(), fmt.Sprintf(format, args...))
	}
}

func (p printer) emit(kind string, fields map[string]interface{}) {
	if !p.json {
		return
	}
	record := map[string]interface{}{"t": time.Since(p.started).Seconds(), "type": kind}
	for k, v := range fields {
		record[k] = v
	}
	line, _ := json.Marshal(record)
	fmt.Println(string(line))
}

// event prints one event: a line for people, or its proto JSON (audio as a byte count).
func (p printer) event(event sonicwire.Event) {
	switch e := event.(type) {
	case *pb.SessionStarted:
		p.say("session %s backend=%s tools=%s", e.SessionId, e.Backend, strings.Join(e.Tools, ","))
	case *pb.Transcript:
		if e.Final {
			who := map[bool]string{true: "you", false: "assistant"}[e.Role == pb.Role_ROLE_USER]
			p.say("%s: %s", who, e.Text)
		}
	case *pb.SpeechActivity:
		p.say("speech %s at %.2f s", strings.ToLower(strings.TrimPrefix(e.Kind.String(), "SPEECH_ACTIVITY_KIND_")), float64(e.OffsetMs)/1000)
	case *pb.ToolCall:
		p.say("tool call %s %s (%s)", e.Name, e.ArgumentsJson, strings.ToLower(strings.TrimPrefix(e.Executor.String(), "TOOL_EXECUTOR_")))
	case *pb.ToolCallResult:
		p.say("tool result %s: %s in %d ms %s", e.Name, e.Status, e.DurationMs, e.ResultJson)
	case *pb.TurnComplete:
		p.say("turn %s complete: %s, %.3f s of audio", e.TurnId, e.StopReason, float64(e.AudioMs)/1000)
	case *pb.Interruption:
		p.say("interrupted turn %s after %d ms", e.TurnId, e.PlayedMs)
	case *pb.Warning:
		p.say("warning %s: %s", e.Reason, e.Message)
	case *pb.GoingAway:
		p.say("server going away: %s", e.Reason)
	}
	if !p.json {
		return
	}
	// The type is the JSON name of the ConverseResponse field carrying this message, e.g.
	// "turnComplete", as in the TypeScript example.
	kind := ""
	oneof := (&pb.ConverseResponse{}).ProtoReflect().Descriptor().Oneofs().ByName("response").Fields()
	for i := 0; i < oneof.Len(); i++ {
		if oneof.Get(i).Message().FullName() == event.ProtoReflect().Descriptor().FullName() {
			kind = oneof.Get(i).JSONName()
		}
	}
	fields := map[string]interface{}{}
	encoded, _ := protojson.Marshal(event)
	_ = json.Unmarshal(encoded, &fields)
	if audio, ok := event.(*pb.AudioOutput); ok {
		fields["audio"] = len(audio.Audio) // bytes, not base64
	}
	p.emit(kind, fields)
}

func exitCode(err error) int {
	var status *sonicwire.Error
	switch {
	case errors.Is(err, sonicwire.ErrAudioFormat):
		return 2
	case !errors.As(err, &status):
		return 1
	case status.Code == codes.Unavailable:
		return 3
	case status.Code == codes.Unauthenticated || status.Code == codes.PermissionDenied:
		return 4
	case status.Code == codes.ResourceExhausted:
		return 5
	case status.Code == codes.DeadlineExceeded:
		return 6
	}
	return 1
}

func run() int {
	o, files, err := parse(os.Args[1:])
	if err == flag.ErrHelp {
		return 0
	}
	usage := func(message string) int {
		fmt.Fprintf(os.Stderr, "talk: %s\n", message)
		return 2
	}
	switch {
	case err != nil:
		return 2 // the flag package printed the problem and the usage
	case len(files) > 1:
		return usage("at most one WAV file")
	case len(files) == 0 && o.text == "":
		return usage("give a WAV file, -text, or both")
	}
	p := printer{json: o.json, started: time.Now()}
	fail := func(err error) int {
		code := exitCode(err)
		fmt.Fprintf(os.Stderr, "talk: %v\n", err)
		fields := map[string]interface{}{"code": nil, "reason": "", "message": err.Error(), "exit_code": code}
		var status *sonicwire.Error
		if errors.As(err, &status) {
			fields["code"], fields["reason"], fields["message"] = sonicwire.CodeName(status.Code), status.Reason, status.Message
		}
		p.emit("error", fields)
		return code
	}
	tlsOptions, err := tlsConfig(o)
	if err != nil {
		return usage(err.Error())
	}
	retry := sonicwire.RetryPolicy{MaxAttempts: o.connectRetries + 1, InitialDelay: 250 * time.Millisecond, MaxDelay: 2 * time.Second, Jitter: 0.2}
	client, err := sonicwire.NewClient(o.target, sonicwire.Options{
		APIKey: o.apiKey, TLS: tlsOptions, Insecure: o.insecure, Retry: retry,
		Timeout: time.Duration(o.timeout * float64(time.Second)),
	})
	if err != nil {
		return usage(err.Error())
	}
	defer client.Close()

	talk := sonicwire.TalkOptions{
		Text:            o.text,
		Speed:           o.speed,
		Unpaced:         o.speed == 0,
		TrailingSilence: time.Duration(o.trailingSilenceMs * float64(time.Millisecond)),
		ReplyTimeout:    time.Duration(o.replyTimeout * float64(time.Second)),
		OnEvent:         p.event,
	}
	if o.trailingSilenceMs == 0 {
		talk.TrailingSilence = -1
	}
	rate := 16000
	if len(files) == 1 {
		audio, err := sonicwire.ReadWAV(files[0])
		if err != nil {
			return fail(err)
		}
		talk.Audio, rate = &audio, audio.SampleRateHz
	}
	talk.Config = sonicwire.SessionConfig(rate)
	talk.Config.Voice = o.voice
	if o.demoTool {
		// A client tool the model can call: it runs here, in this process. Examples and
		// AnswerTemplate teach it to the offline local engine; Nova Sonic reads the description.
		talk.Tools = map[string]sonicwire.ClientTool{"get_weather": {
			Description: "The weather forecast for a city.",
			Parameters: map[string]interface{}{
				"type": "object",
				"properties": map[string]interface{}{
					"city": map[string]interface{}{"type": "string", "enum": []string{"Lisbon", "Paris", "Tokyo"}},
				},
				"required": []string{"city"},
			},
			Examples:       []string{"what's the weather in {city}", "weather in {city}", "is it raining in {city}"},
			AnswerTemplate: "In {city} it is {forecast}.",
			Handler: func(_ context.Context, args map[string]interface{}) (interface{}, error) {
				return map[string]interface{}{"city": args["city"], "forecast": "sunny", "answered_by": "go"}, nil
			},
		}}
	}

	result, err := sonicwire.Talk(context.Background(), client, talk)
	if err != nil {
		return fail(err)
	}
	saved := !o.noSave && len(result.Reply.Data) > 0
	if saved {
		if err := sonicwire.WriteWAV(o.out, result.Reply); err != nil {
			return fail(err)
		}
	}
	replyMs := result.Reply.DurationMs()
	where := ""
	if saved {
		where = " written to " + o.out
	}
	p.say("done: reply %.2f s of audio%s", float64(replyMs)/1000, where)
	var out interface{}
	if saved {
		out = o.out
	}
	p.emit("done", map[string]interface{}{
		"session_id":           result.Session.SessionId,
		"sent_ms":              result.SentMs,
		"reply_ms":             replyMs,
		"reply_sample_rate_hz": result.Reply.SampleRateHz,
		"user_text":            result.Text(pb.Role_ROLE_USER),
		"assistant_text":       result.Text(pb.Role_ROLE_ASSISTANT),
		"out":                  out,
	})
	return 0
}

func main() { os.Exit(run()) }

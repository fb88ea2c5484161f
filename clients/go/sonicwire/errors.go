package sonicwire

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a gRPC status the server ended a call with, plus its google.rpc.ErrorInfo.
//
// Match it with errors.As and switch on Code, or on Reason for the stable UPPER_SNAKE cause:
//
//	var e *sonicwire.Error
//	if errors.As(err, &e) && e.Code == codes.InvalidArgument && e.Reason == "VOICE_UNKNOWN" { ... }
type Error struct {
	// Code is the gRPC status code.
	Code codes.Code
	// Reason is the ErrorInfo reason (e.g. "AUDIO_FORMAT_UNSUPPORTED"), or "" when absent.
	Reason string
	// Domain is the ErrorInfo domain ("sonicwire.dev" for Sonicwire), or "".
	Domain string
	// Metadata is the ErrorInfo metadata map (nil when absent).
	Metadata map[string]string
	// Message is the status message.
	Message string
}

func (e *Error) Error() string {
	prefix := CodeName(e.Code)
	if e.Reason != "" {
		prefix += " " + e.Reason
	}
	if e.Message == "" {
		return prefix
	}
	return prefix + ": " + e.Message
}

// GRPCStatus lets status.FromError and status.Code see the original status code.
func (e *Error) GRPCStatus() *status.Status { return status.New(e.Code, e.Message) }

// CodeName is the gRPC name of a code, e.g. "INVALID_ARGUMENT".
func CodeName(code codes.Code) string {
	name := code.String() // "InvalidArgument"
	var out strings.Builder
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			out.WriteByte('_')
		}
		out.WriteRune(r)
	}
	return strings.ToUpper(strings.Replace(out.String(), "Canceled", "Cancelled", 1))
}

var (
	// ErrConversationClosed is returned by a send after EndInput, Close or the end of the stream.
	ErrConversationClosed = errors.New("sonicwire: the conversation has ended")
	// ErrProtocol is wrapped by errors about a server breaking the stream protocol.
	ErrProtocol = errors.New("sonicwire: protocol error")
	// ErrAudioFormat is wrapped by errors about a WAV file the client cannot send.
	ErrAudioFormat = errors.New("sonicwire: unsupported audio")
)

// FromStatus turns an error returned by a gRPC call into an *Error carrying the status code and
// the ErrorInfo detail. Errors without a gRPC status (and nil) are returned unchanged. It is the
// one place where statuses are translated.
func FromStatus(err error) error {
	var already *Error
	if err == nil || errors.As(err, &already) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	result := &Error{Code: st.Code(), Message: st.Message()}
	for _, detail := range st.Details() {
		if info, ok := detail.(*errdetails.ErrorInfo); ok {
			result.Reason, result.Domain, result.Metadata = info.Reason, info.Domain, info.Metadata
			break
		}
	}
	return result
}

// IsCode reports whether err is an *Error with the given status code.
func IsCode(err error, code codes.Code) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

func protocolError(format string, args ...interface{}) error {
	return fmt.Errorf("%w: "+format, append([]interface{}{ErrProtocol}, args...)...)
}

package sonicwire

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"time"

	"google.golang.org/protobuf/proto"

	pb "sonicwire.dev/go/sonicwirev1"
)

// ToolHandler implements a client-side tool: it gets the call's arguments and returns the
// result. A string is sent as is, anything else as JSON; an error becomes an error result.
type ToolHandler func(ctx context.Context, args map[string]interface{}) (interface{}, error)

// ClientTool is a tool the model can call that runs in this process. Pass tools to
// Client.Converse: they are declared in SessionConfig.client_tools and every ToolCall for them
// (executor CLIENT) is answered automatically with a ToolResult.
type ClientTool struct {
	Handler ToolHandler
	// Description says what the tool does, for the model.
	Description string
	// Parameters is the JSON schema (an object schema) of the arguments; nil for any object.
	Parameters map[string]interface{}
	// Timeout is how long the server waits for the result; 0 for the server default.
	Timeout time.Duration
	// Examples say how users ask for the tool, with {property} slots ("weather in {city}"), for
	// the offline local engine (ToolDefinition.examples).
	Examples []string
	// AnswerTemplate is how the offline engine speaks the result: "In {city} it is {forecast}.".
	AnswerTemplate string
}

var toolName = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9_-]{0,63}$`)

// Definition is the ToolDefinition declaring the tool as name.
func (t ClientTool) Definition(name string) (*pb.ToolDefinition, error) {
	if !toolName.MatchString(name) {
		return nil, fmt.Errorf("invalid tool name %q: use a letter then up to 63 letters, digits, _ or -", name)
	}
	parameters := t.Parameters
	if parameters == nil {
		parameters = map[string]interface{}{"type": "object"}
	}
	schema, err := json.Marshal(parameters)
	if err != nil {
		return nil, fmt.Errorf("tool %s: parameters are not JSON: %w", name, err)
	}
	return &pb.ToolDefinition{
		Name:                 name,
		Description:          t.Description,
		ParametersJsonSchema: string(schema),
		TimeoutMs:            int32(t.Timeout / time.Millisecond),
		Examples:             append([]string(nil), t.Examples...),
		AnswerTemplate:       t.AnswerTemplate,
	}, nil
}

// DeclareTools returns a copy of config with tools declared in client_tools. A tool already
// declared there under the same name keeps its declaration (a hand-written schema wins).
func DeclareTools(config *pb.SessionConfig, tools map[string]ClientTool) (*pb.SessionConfig, error) {
	result := proto.Clone(config).(*pb.SessionConfig)
	declared := map[string]bool{}
	for _, d := range result.ClientTools {
		declared[d.Name] = true
	}
	for name, tool := range tools {
		definition, err := tool.Definition(name)
		if err != nil {
			return nil, err
		}
		if !declared[name] {
			result.ClientTools = append(result.ClientTools, definition)
		}
	}
	return result, nil
}

// RunTool runs a handler and encodes its outcome for a ToolResult: content and isError.
// A panicking handler is reported as an error result rather than crashing the process.
func RunTool(ctx context.Context, tool ClientTool, argumentsJSON string) (content string, isError bool) {
	defer func() {
		if recovered := recover(); recovered != nil {
			content, isError = errorResult(fmt.Errorf("panic: %v", recovered)), true
		}
	}()
	args := map[string]interface{}{}
	if argumentsJSON != "" {
		if err := json.Unmarshal([]byte(argumentsJSON), &args); err != nil {
			return errorResult(fmt.Errorf("arguments are not a JSON object: %w", err)), true
		}
	}
	value, err := tool.Handler(ctx, args)
	if err != nil {
		return errorResult(err), true
	}
	if text, ok := value.(string); ok {
		return text, false
	}
	encoded, err := json.Marshal(value)
	if err != nil {
		return errorResult(fmt.Errorf("result is not JSON: %w", err)), true
	}
	return string(encoded), false
}

func errorResult(err error) string {
	encoded, _ := json.Marshal(map[string]string{"error": err.Error()})
	return string(encoded)
}

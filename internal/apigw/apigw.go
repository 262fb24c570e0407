// Package apigw serves a plain http.Handler as a Lambda function behind
// Amazon API Gateway (HTTP API payload 2.0 and REST API payload 1.0 proxy
// events) or an Application Load Balancer (Lambda target group events).
//
// The handler sees the caller's address as the request's RemoteAddr: API
// Gateway's sourceIp, or for the load balancer the address it appended to
// X-Forwarded-For. Whatever a caller put in X-Forwarded-For itself comes
// before that last entry and is never taken for its address.
package apigw

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// Handler adapts an http.Handler to API Gateway proxy events of either
// payload version and to Application Load Balancer events.
type Handler struct {
	v1  *httpadapter.HandlerAdapter
	v2  *httpadapter.HandlerAdapterV2
	alb *httpadapter.HandlerAdapterALB
}

// New returns a Lambda handler serving h.
func New(h http.Handler) *Handler {
	return &Handler{v1: httpadapter.New(h), v2: httpadapter.NewV2(h), alb: httpadapter.NewALB(albPeer(h))}
}

// Handle serves one event; pass it to lambda.Start.
func (h *Handler) Handle(ctx context.Context, event json.RawMessage) (any, error) {
	var probe struct {
		RequestContext struct {
			ELB json.RawMessage `json:"elb"`
		} `json:"requestContext"`
	}
	if err := json.Unmarshal(event, &probe); err != nil {
		return nil, errors.New("apigw: event is not a JSON object")
	}
	if len(probe.RequestContext.ELB) > 0 {
		var req events.ALBTargetGroupRequest
		if err := json.Unmarshal(event, &req); err != nil {
			return nil, errors.New("apigw: unreadable load balancer event")
		}
		return h.handleALB(ctx, req)
	}
	var sw core.SwitchableAPIGatewayRequest
	if err := json.Unmarshal(event, &sw); err != nil {
		return nil, errors.New("apigw: event is neither an API Gateway v1 nor v2 proxy request nor a load balancer request")
	}
	return h.handleAPIGateway(ctx, sw)
}

func (h *Handler) handleAPIGateway(ctx context.Context, event core.SwitchableAPIGatewayRequest) (*core.SwitchableAPIGatewayResponse, error) {
	if v2 := event.Version2(); v2 != nil {
		resp, err := h.v2.ProxyWithContext(ctx, *v2)
		if err != nil {
			return nil, err
		}
		return core.NewSwitchableAPIGatewayResponseV2(&resp), nil
	}
	if v1 := event.Version1(); v1 != nil {
		resp, err := h.v1.ProxyWithContext(ctx, *v1)
		if err != nil {
			return nil, err
		}
		return core.NewSwitchableAPIGatewayResponseV1(&resp), nil
	}
	return nil, errors.New("apigw: event is neither an API Gateway v1 nor v2 proxy request")
}

// handleALB answers a load balancer event in the header form it came in:
// multiValueHeaders when the target group has multi-value headers on,
// headers otherwise (the load balancer ignores the other form).
func (h *Handler) handleALB(ctx context.Context, req events.ALBTargetGroupRequest) (events.ALBTargetGroupResponse, error) {
	resp, err := h.alb.ProxyWithContext(ctx, req)
	if err != nil {
		return events.ALBTargetGroupResponse{}, err
	}
	if req.MultiValueHeaders == nil {
		resp.Headers = map[string]string{}
		for k, v := range resp.MultiValueHeaders {
			resp.Headers[k] = strings.Join(v, ", ")
		}
		resp.MultiValueHeaders = nil
	}
	return resp, nil
}

// albPeer sets the request's RemoteAddr to the address the load balancer
// saw, the last entry of X-Forwarded-For (the load balancer appends it), and
// clears it when there is none, so that no caller-supplied value is taken
// for the caller's address.
func albPeer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.RemoteAddr = ""
		if vs := r.Header.Values("X-Forwarded-For"); len(vs) > 0 {
			last := vs[len(vs)-1]
			if i := strings.LastIndexByte(last, ','); i >= 0 {
				last = last[i+1:]
			}
			r.RemoteAddr = strings.TrimSpace(last)
		}
		next.ServeHTTP(w, r)
	})
}

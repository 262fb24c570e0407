// Package apigw serves a plain http.Handler as a Lambda function behind
// Amazon API Gateway, accepting both HTTP API (payload 2.0) and REST API
// (payload 1.0) proxy events.
package apigw

import (
	"context"
	"errors"
	"net/http"

	"github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"
)

// Handler adapts an http.Handler to API Gateway proxy events of either
// payload version.
type Handler struct {
	v1 *httpadapter.HandlerAdapter
	v2 *httpadapter.HandlerAdapterV2
}

// New returns a Lambda handler serving h.
func New(h http.Handler) *Handler {
	return &Handler{v1: httpadapter.New(h), v2: httpadapter.NewV2(h)}
}

// Handle serves one API Gateway event; pass it to lambda.Start.
func (h *Handler) Handle(ctx context.Context, event core.SwitchableAPIGatewayRequest) (*core.SwitchableAPIGatewayResponse, error) {
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

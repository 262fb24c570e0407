package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/ceb179/ceb179"
)

// pkCertPrefix starts the partition key of an ebpCode's certificates:
// CERT#<ebpCode>, sort key <certNo>.
const pkCertPrefix = "CERT#"

type certItem struct {
	PK           string `dynamodbav:"pk"`
	SK           string `dynamodbav:"sk"`
	PEM          string `dynamodbav:"pem"`
	NotAfter     int64  `dynamodbav:"notAfter,omitempty"`
	RegisteredAt int64  `dynamodbav:"registeredAt"`
}

func (it certItem) certificate() ceb179.Certificate {
	c := ceb179.Certificate{
		EbpCode:      it.PK[len(pkCertPrefix):],
		CertNo:       it.SK,
		PEM:          []byte(it.PEM),
		RegisteredAt: time.UnixMilli(it.RegisteredAt),
	}
	if it.NotAfter > 0 {
		c.NotAfter = time.UnixMilli(it.NotAfter)
	}
	return c
}

// PutCertificate registers c for its ebpCode, replacing a certificate with
// the same certNo. The caller has parsed the PEM and computed CertNo from
// it.
func (s *Store) PutCertificate(ctx context.Context, c ceb179.Certificate) error {
	if c.EbpCode == "" || c.CertNo == "" || len(c.PEM) == 0 {
		return fmt.Errorf("put certificate: ebpCode, certNo and PEM are required")
	}
	it := certItem{
		PK:           pkCertPrefix + c.EbpCode,
		SK:           c.CertNo,
		PEM:          string(c.PEM),
		RegisteredAt: c.RegisteredAt.UnixMilli(),
	}
	if !c.NotAfter.IsZero() {
		it.NotAfter = c.NotAfter.UnixMilli()
	}
	return s.put(ctx, s.tables.Payments, it, "", "certificate "+c.EbpCode+"/"+c.CertNo)
}

// GetCertificate returns the certificate certNo registered for ebpCode, or
// ceb179.ErrNotFound.
func (s *Store) GetCertificate(ctx context.Context, ebpCode, certNo string) (ceb179.Certificate, error) {
	return get(ctx, s, s.tables.Payments, map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pkCertPrefix + ebpCode},
		"sk": &types.AttributeValueMemberS{Value: certNo},
	}, "certificate "+ebpCode+"/"+certNo, certItem.certificate)
}

// ListCertificates returns the certificates registered for ebpCode.
func (s *Store) ListCertificates(ctx context.Context, ebpCode string) ([]ceb179.Certificate, error) {
	return query(ctx, s, &dynamodb.QueryInput{
		TableName:              aws.String(s.tables.Payments),
		KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pkCertPrefix + ebpCode},
		},
	}, "certificates "+ebpCode, certItem.certificate)
}

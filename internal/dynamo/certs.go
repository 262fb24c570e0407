package dynamo

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
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
	item, err := attributevalue.MarshalMap(it)
	if err != nil {
		return fmt.Errorf("encode certificate %s/%s: %w", c.EbpCode, c.CertNo, err)
	}
	if _, err := s.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(s.tables.Payments), Item: item}); err != nil {
		return fmt.Errorf("put certificate %s/%s: %w", c.EbpCode, c.CertNo, err)
	}
	return nil
}

// GetCertificate returns the certificate certNo registered for ebpCode, or
// ceb179.ErrNotFound.
func (s *Store) GetCertificate(ctx context.Context, ebpCode, certNo string) (ceb179.Certificate, error) {
	item, err := s.getItem(ctx, s.tables.Payments, map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: pkCertPrefix + ebpCode},
		"sk": &types.AttributeValueMemberS{Value: certNo},
	})
	if err != nil {
		return ceb179.Certificate{}, fmt.Errorf("get certificate %s/%s: %w", ebpCode, certNo, err)
	}
	var it certItem
	if err := attributevalue.UnmarshalMap(item, &it); err != nil {
		return ceb179.Certificate{}, fmt.Errorf("decode certificate %s/%s: %w", ebpCode, certNo, err)
	}
	return it.certificate(), nil
}

// ListCertificates returns the certificates registered for ebpCode.
func (s *Store) ListCertificates(ctx context.Context, ebpCode string) ([]ceb179.Certificate, error) {
	var out []ceb179.Certificate
	p := dynamodb.NewQueryPaginator(s.db, &dynamodb.QueryInput{
		TableName:              aws.String(s.tables.Payments),
		KeyConditionExpression: aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: pkCertPrefix + ebpCode},
		},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list certificates %s: %w", ebpCode, err)
		}
		for _, av := range page.Items {
			var it certItem
			if err := attributevalue.UnmarshalMap(av, &it); err != nil {
				return nil, fmt.Errorf("decode certificate %s: %w", ebpCode, err)
			}
			out = append(out, it.certificate())
		}
	}
	return out, nil
}

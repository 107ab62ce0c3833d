package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// S3Options configure the S3 store. Zero values take the defaults.
type S3Options struct {
	// Endpoint of an S3-compatible store (http(s)://host:port). Default:
	// AWS for the region.
	Endpoint string
	// Region. Default: from the AWS configuration chain, else us-east-1.
	Region string
	// PathStyle addresses buckets as endpoint/bucket (most S3-compatible
	// stores) instead of bucket.endpoint. Default false.
	PathStyle bool
	// PartSize of multipart uploads; objects up to it go in one PUT.
	// Default 16 MiB (minimum 5 MiB).
	PartSize int64
	// MaxAttempts of each request on 5xx, throttling and network errors,
	// with exponential backoff. Default 6.
	MaxAttempts int
	// Timeout of each request attempt. Default 60s.
	Timeout time.Duration
}

// S3 is a Store in an S3 bucket under a prefix. Credentials come from the
// standard AWS chain (environment, shared files, web identity, instance
// role). Objects larger than PartSize stream up as multipart uploads, part
// by part, never copied whole.
type S3 struct {
	client   *s3.Client
	bucket   string
	prefix   string // "" or ending in "/"
	partSize int64
}

// NewS3 returns the store for s3://bucket/prefix.
func NewS3(ctx context.Context, rawURL string, o S3Options) (*S3, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Scheme != "s3" || u.Host == "" {
		return nil, fmt.Errorf("sink url %q: want s3://bucket/prefix", rawURL)
	}
	if o.PartSize == 0 {
		o.PartSize = 16 << 20
	}
	if o.PartSize < 5<<20 {
		return nil, fmt.Errorf("s3 part size %d: at least 5 MiB", o.PartSize)
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 6
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	loadOpts := []func(*awsconfig.LoadOptions) error{
		awsconfig.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(so *retry.StandardOptions) {
				so.MaxAttempts = o.MaxAttempts
				so.MaxBackoff = 10 * time.Second
			})
		}),
		awsconfig.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(o.Timeout)),
	}
	if o.Region != "" {
		loadOpts = append(loadOpts, awsconfig.WithRegion(o.Region))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		return nil, fmt.Errorf("aws configuration: %w", err)
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(so *s3.Options) {
		if o.Endpoint != "" {
			so.BaseEndpoint = aws.String(o.Endpoint)
		}
		so.UsePathStyle = o.PathStyle
	})
	prefix := strings.Trim(u.Path, "/")
	if prefix != "" {
		prefix += "/"
	}
	return &S3{client: client, bucket: u.Host, prefix: prefix, partSize: o.PartSize}, nil
}

// String implements Store.
func (s *S3) String() string { return "s3://" + s.bucket + "/" + s.prefix }

// Check verifies the bucket exists and is accessible. A missing bucket or
// denied access is an error; a store that cannot be reached is reported
// as such too (the caller decides whether to wait for it).
func (s *S3) Check(ctx context.Context) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket})
	if err != nil {
		return fmt.Errorf("bucket %s: %w", s.bucket, err)
	}
	return nil
}

func (s *S3) key(k string) (string, error) {
	if k == "" || strings.HasPrefix(k, "/") || strings.Contains(k, "..") {
		return "", fmt.Errorf("invalid object key %q", k)
	}
	return s.prefix + k, nil
}

// Put implements Store: one PUT up to PartSize, a multipart upload above.
// S3 makes an object visible whole at the end of either, never in part.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	k, err := s.key(key)
	if err != nil {
		return err
	}
	if size >= 0 && size <= s.partSize {
		body, err := readerAt(r, size)
		if err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		_, err = s.client.PutObject(ctx, &s3.PutObjectInput{
			Bucket: &s.bucket, Key: &k, Body: io.NewSectionReader(body, 0, size), ContentLength: aws.Int64(size),
		})
		if err != nil {
			return fmt.Errorf("put %s: %w", key, err)
		}
		return nil
	}
	return s.multipart(ctx, k, r, size)
}

// readerAt returns r as an io.ReaderAt, reading it into memory only when
// it is not one already (a retried request must re-read the body).
func readerAt(r io.Reader, size int64) (io.ReaderAt, error) {
	if ra, ok := r.(io.ReaderAt); ok {
		return ra, nil
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return bytes.NewReader(b), nil
}

func (s *S3) multipart(ctx context.Context, k string, r io.Reader, size int64) (err error) {
	mu, err := s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return fmt.Errorf("put %s: start multipart: %w", k, err)
	}
	defer func() {
		if err != nil {
			// Best effort: a bucket lifecycle rule cleans up what this misses.
			actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{Bucket: &s.bucket, Key: &k, UploadId: mu.UploadId})
		}
	}()
	ra, isRA := r.(io.ReaderAt)
	var buf []byte
	var parts []types.CompletedPart
	for off, n := int64(0), int32(1); size < 0 || off < size; n++ {
		var body io.ReadSeeker
		var partLen int64
		if isRA && size >= 0 {
			partLen = min(s.partSize, size-off)
			body = io.NewSectionReader(ra, off, partLen)
		} else {
			if buf == nil {
				buf = make([]byte, s.partSize)
			}
			m, rerr := io.ReadFull(r, buf)
			if rerr != nil && rerr != io.ErrUnexpectedEOF && rerr != io.EOF {
				return fmt.Errorf("put %s: read: %w", k, rerr)
			}
			if m == 0 {
				break
			}
			partLen = int64(m)
			body = bytes.NewReader(buf[:m])
		}
		out, err := s.client.UploadPart(ctx, &s3.UploadPartInput{
			Bucket: &s.bucket, Key: &k, UploadId: mu.UploadId, PartNumber: aws.Int32(n),
			Body: body, ContentLength: aws.Int64(partLen),
		})
		if err != nil {
			return fmt.Errorf("put %s: part %d: %w", k, n, err)
		}
		parts = append(parts, types.CompletedPart{ETag: out.ETag, PartNumber: aws.Int32(n)})
		off += partLen
		if partLen < s.partSize {
			break
		}
	}
	_, err = s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &s.bucket, Key: &k, UploadId: mu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts},
	})
	if err != nil {
		return fmt.Errorf("put %s: complete multipart: %w", k, err)
	}
	return nil
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) ([]byte, error) {
	b, _, err := s.GetVersion(ctx, key)
	return b, err
}

// GetVersion implements Store; the version is the ETag.
func (s *S3) GetVersion(ctx context.Context, key string) ([]byte, string, error) {
	k, err := s.key(key)
	if err != nil {
		return nil, "", err
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		var nsk *types.NoSuchKey
		if errors.As(err, &nsk) || httpStatus(err) == http.StatusNotFound {
			return nil, "", fmt.Errorf("get %s: %w", key, ErrNotExist)
		}
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, "", fmt.Errorf("get %s: %w", key, err)
	}
	return b, aws.ToString(out.ETag), nil
}

// PutIf implements Store with S3 conditional writes: If-Match on the
// ETag, or If-None-Match: * to create. 412 is a precondition failure; 409
// (a concurrent conditional write) is returned as a retryable error.
func (s *S3) PutIf(ctx context.Context, key string, data []byte, version string) (string, error) {
	k, err := s.key(key)
	if err != nil {
		return "", err
	}
	in := &s3.PutObjectInput{Bucket: &s.bucket, Key: &k, Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
		ContentType: aws.String("application/json")}
	if version == "" {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = aws.String(version)
	}
	out, err := s.client.PutObject(ctx, in)
	if err != nil {
		if httpStatus(err) == http.StatusPreconditionFailed {
			return "", fmt.Errorf("put-if %s: %w", key, ErrPrecondition)
		}
		return "", fmt.Errorf("put-if %s: %w", key, err)
	}
	return aws.ToString(out.ETag), nil
}

func httpStatus(err error) int {
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		return re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "PreconditionFailed" {
		return http.StatusPreconditionFailed
	}
	return 0
}

// List implements Store.
func (s *S3) List(ctx context.Context, prefix string) ([]string, error) {
	full := s.prefix + prefix
	var keys []string
	p := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.bucket, Prefix: &full})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", prefix, err)
		}
		for _, o := range page.Contents {
			keys = append(keys, strings.TrimPrefix(aws.ToString(o.Key), s.prefix))
		}
	}
	return keys, nil
}

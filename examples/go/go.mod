module nsq-k8s/examples/go

go 1.21

require github.com/nsqio/go-nsq v1.1.0

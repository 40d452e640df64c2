//! nsq-diskqueue: a segmented on-disk FIFO queue (work in progress).

;; 1000 pages (62.5 MiB) of initial memory: refused under --max-pages 16.
(module (memory 1000) (func (export "_start")))

;; A table far above the engine's limit: instantiation must be refused.
(module (table 100000000 funcref) (func (export "_start")))

;; table.grow in an endless loop: each grow past the limit answers -1, and
;; fuel ends the loop.
(module
  (table 10 funcref)
  (global $refused (mut i32) (i32.const 0))
  (func (export "_start")
    (loop
      (if (i32.eq (table.grow 0 (ref.null func) (i32.const 1000000)) (i32.const -1))
        (then (global.set $refused (i32.add (global.get $refused) (i32.const 1)))))
      (br 0))))

;; wrong_init.wat - exports init with the wrong signature: spawning it
;; must fail with a world mismatch naming the function and both types.
(module
  (memory (export "memory") 1)
  (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32) (i32.const 1024))
  (func (export "theater:simple/actor#init") (param i32) (result i32) (i32.const 0)))

;; prober.wat - a test actor (core-module form) that exports the health
;; probe theater:simple/health#check, for the export-probe tests. No state.
;;   handle-send sets how check answers, by the message's first byte:
;;     '0' ok   'e' error "sick"   't' traps   'l' loops forever (fuel)
;;   handle-request answers the number of check calls so far (u64, little-
;;     endian), so a test sees the export really ran.
(module
  (memory (export "memory") 1)
  (global $bump (mut i32) (i32.const 4096))
  (global $mode (mut i32) (i32.const 48))
  (global $checks (mut i64) (i64.const 0))
  (data (i32.const 16) "sick")

  ;; ok((none)) in the return area at 64
  (func $ok_none (result i32)
    (i32.store8 (i32.const 64) (i32.const 0))
    (i32.store8 (i32.const 68) (i32.const 0))
    (i32.const 64))

  (func (export "theater:simple/actor#init") (param i32 i32 i32 i32 i32) (result i32)
    (call $ok_none))

  (func (export "theater:simple/message-server-client#handle-send") (param i32 i32 i32) (param $mp i32) (param $ml i32) (result i32)
    (if (i32.gt_u (local.get $ml) (i32.const 0))
      (then (global.set $mode (i32.load8_u (local.get $mp)))))
    (call $ok_none))

  ;; ok((none, some(checks as 8 bytes)))
  (func (export "theater:simple/message-server-client#handle-request") (param i32 i32 i32 i32 i32 i32 i32) (result i32)
    (i64.store (i32.const 128) (global.get $checks))
    (drop (call $ok_none))
    (i32.store8 (i32.const 80) (i32.const 1))
    (i32.store (i32.const 84) (i32.const 128))
    (i32.store (i32.const 88) (i32.const 8))
    (i32.const 64))

  (func (export "theater:simple/health#check") (param i32 i32 i32) (param $n i64) (result i32)
    (global.set $checks (i64.add (global.get $checks) (i64.const 1)))
    (if (i32.eq (global.get $mode) (i32.const 101)) ;; 'e'
      (then
        (i32.store8 (i32.const 64) (i32.const 1))
        (i32.store (i32.const 68) (i32.const 16))
        (i32.store (i32.const 72) (i32.const 4))
        (return (i32.const 64))))
    (if (i32.eq (global.get $mode) (i32.const 116)) (then unreachable)) ;; 't'
    (if (i32.eq (global.get $mode) (i32.const 108)) (then (loop $l (br $l)))) ;; 'l'
    (call $ok_none))

  (func (export "cabi_realloc") (param i32 i32) (param $al i32) (param $nsz i32) (result i32)
    (local $p i32)
    (local.set $p (i32.and (i32.add (global.get $bump) (i32.sub (local.get $al) (i32.const 1)))
                           (i32.sub (i32.const 0) (local.get $al))))
    (global.set $bump (i32.add (local.get $p) (local.get $nsz)))
    (if (i32.gt_u (global.get $bump) (i32.const 65536)) (then unreachable))
    (local.get $p))

  (func (export "cabi_post_theater:simple/message-server-client#handle-send") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/message-server-client#handle-request") (param i32) (global.set $bump (i32.const 4096)))
  (func (export "cabi_post_theater:simple/health#check") (param i32) (global.set $bump (i32.const 4096)))
)

%% savina.erl - the Savina-style actor benchmarks on Erlang/OTP, the
%% reference that bench/runtime/ compares Theater's runtime against.
%% Prints one line per benchmark: "<name> <count> <seconds> <rate>/s".
%%   erlc savina.erl && erl -noshell -s savina main N -s init stop
-module(savina).
-export([main/0, main/1]).

main() -> main(['1000000']).
main([NAtom]) ->
    N = list_to_integer(atom_to_list(NAtom)),
    report(counting, N, fun() -> counting(N) end),
    report(pingpong, N div 4, fun() -> pingpong(N div 4) end),
    report(threadring, N, fun() -> threadring(100, N) end),
    report(spawn, N div 10, fun() -> spawn_many(N div 10) end).

report(Name, Count, F) ->
    {Micros, ok} = timer:tc(F),
    Secs = Micros / 1.0e6,
    io:format("~s ~b ~.6f ~b~n", [Name, Count, Secs, round(Count / Secs)]).

%% Counting: one actor receives N messages, then reports its count.
counting(N) ->
    C = spawn(fun() -> counter(0) end),
    [C ! {inc} || _ <- lists:seq(1, N)],
    C ! {get, self()},
    receive {count, N} -> ok end.
counter(K) ->
    receive
        {inc} -> counter(K + 1);
        {get, From} -> From ! {count, K}
    end.

%% PingPong: N round trips between two actors.
pingpong(N) ->
    Pong = spawn(fun pong/0),
    Self = self(),
    spawn(fun() -> ping(Pong, N), Self ! done end),
    receive done -> ok end.
ping(Pong, 0) -> Pong ! stop;
ping(Pong, K) ->
    Pong ! {ping, self()},
    receive pong -> ping(Pong, K - 1) end.
pong() ->
    receive
        {ping, From} -> From ! pong, pong();
        stop -> ok
    end.

%% ThreadRing: a token passed N hops around a ring of R actors.
threadring(R, N) ->
    Self = self(),
    Nodes = [spawn(fun() -> receive {link, Next} -> ring(Self, Next) end end)
             || _ <- lists:seq(1, R)],
    [A ! {link, B} || {A, B} <- lists:zip(Nodes, tl(Nodes) ++ [hd(Nodes)])],
    hd(Nodes) ! {token, N},
    receive done -> ok end.
ring(Main, Next) ->
    receive
        {token, 0} -> Main ! done, ring(Main, Next);
        {token, K} -> Next ! {token, K - 1}, ring(Main, Next)
    end.

%% Spawn: N actors started, each told to stop and acknowledged.
spawn_many(N) ->
    Self = self(),
    Pids = [spawn(fun() -> receive stop -> Self ! stopped end end)
            || _ <- lists:seq(1, N)],
    [P ! stop || P <- Pids],
    [receive stopped -> ok end || _ <- Pids],
    ok.

#!/bin/bash
# usage: run.sh LABEL [extra env]; one run: start redis, worker -P threads -c ${CONC:-8}, enqueue, restart redis, watch worker
set -u
LABEL=$1; PORT=${REPRO_PORT:-6391}; PY=/work/main/.venv/bin/python
cd /tmp/kombu-repro
LOG=logs/$LABEL.log; mkdir -p logs; : > $LOG
redis-cli -p $PORT shutdown nosave >/dev/null 2>&1; sleep 0.3
redis-server --port $PORT --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --logfile /tmp/kombu-repro/logs/redis-$PORT.log
sleep 0.5
timeout -s KILL 120 $PY launch.py >>$LOG 2>&1 &
WPID=$!
echo $WPID > logs/$LABEL.pid
sleep 4
$PY enqueue.py 0 ${N:-200} ${SECS:-0.6}
sleep 2
redis-cli -p $PORT shutdown nosave >/dev/null 2>&1
sleep ${DOWN:-3}
redis-server --port $PORT --bind 127.0.0.1 --save '' --appendonly no --daemonize yes --logfile /tmp/kombu-repro/logs/redis-$PORT.log
# watch up to 25s
ALIVE=1
for t in $(seq 1 ${WATCH:-12}); do
  if ! kill -0 $WPID 2>/dev/null; then ALIVE=0; break; fi
  sleep 1
done
if [ $ALIVE = 1 ]; then
  # still alive: is it consuming? enqueue a few more and see they are received
  $PY enqueue.py 100 4 0.2
  sleep 6
  RECV=$(grep -c "Task slow\[.*\] received" $LOG)
  kill -TERM $WPID; wait $WPID; RC=$?
  echo "$LABEL: survived (rc after TERM=$RC) received=$RECV post-restart-ok=$(grep -c 'succeeded.*: 10[0-3]$' $LOG)"
else
  wait $WPID; RC=$?
  echo "$LABEL: DIED rc=$RC"
fi
echo "  unrecoverable=$(grep -c 'Unrecoverable' $LOG) kill_job=$(grep -c 'kill_job' $LOG) hostname=$(grep -c "attribute 'hostname'" $LOG) unacked=$(redis-cli -p $PORT hlen unacked)"
redis-cli -p $PORT shutdown nosave >/dev/null 2>&1

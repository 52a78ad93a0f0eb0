# Usage:
#   . ./cmd.sh                       # sourced by run.sh / sllm.sh (recipes link to this file)
#   cmd_backend=slurm ./run.sh ...   # pick the backend for one run without editing anything
#
# Defines how the recipe's jobs are run; the stages use the variables as
#   ${decode_cmd} JOB=1:${nj} exp/.../log/decode.JOB.log \
#       python -m espnet_sllm.bin.sllm_inference --key_file .../keys.JOB.scp ...
#   ${cuda_cmd} --gpu 1 exp/.../log/train.log python -m espnet_sllm.bin.sllm_train ...
#
#   train_cmd   CPU jobs of data preparation, statistics and scoring
#   decode_cmd  decoding jobs (one per split of the test set)
#   cuda_cmd    jobs that need GPUs (training, GPU decoding); the stage adds --gpu N
#
# All three call our launcher (python -m espnet_sllm.bin.launch --help lists its options):
#   local   every job on this machine, at most --max_jobs_run at a time (default: all CPUs)
#   slurm   array jobs through `sbatch --wait`: one Slurm task per job, logs where the recipe says
#
# For a cluster, edit the slurm branch below: partition names, account, memory and time limits
# are site-specific.  The variables are expanded WITHOUT quote processing, so give each sbatch
# option in its own `--slurm_opts=<option>` word, with no spaces inside (e.g.
# --slurm_opts=--partition=gpu --slurm_opts=--account=myproject).  Multi-GPU training itself is
# started by ESPnet's launcher inside the job (--ngpu, --multiprocessing_distributed,
# --dist_launcher slurm), see the recipe's README.

cmd_backend=${cmd_backend:-local}

case "${cmd_backend}" in
    local)
        train_cmd="python -m espnet_sllm.bin.launch --backend local"
        decode_cmd="python -m espnet_sllm.bin.launch --backend local"
        # Jobs share the GPUs of CUDA_VISIBLE_DEVICES; run GPU jobs one at a time.
        cuda_cmd="python -m espnet_sllm.bin.launch --backend local --max_jobs_run 1"
        ;;
    slurm)
        train_cmd="python -m espnet_sllm.bin.launch --backend slurm --mem 8G --time 1-00:00:00"
        decode_cmd="python -m espnet_sllm.bin.launch --backend slurm --mem 16G --time 12:00:00"
        cuda_cmd="python -m espnet_sllm.bin.launch --backend slurm --mem 64G --time 3-00:00:00"
        cuda_cmd+=" --slurm_opts=--partition=gpu"
        ;;
    *)
        echo "cmd.sh: unknown cmd_backend='${cmd_backend}' (use local or slurm)" >&2
        return 1 2>/dev/null || exit 1
        ;;
esac

"""espnet_sllm"""

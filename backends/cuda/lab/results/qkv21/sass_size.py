# cu21-qkv: instructions (bytes / 16) of the sm_90 cubin's .text sections in an object's fatbin (zstd-compressed
# entries need the zstd tool); no cuobjdump / nvdisasm on the dev box. Example:
#   python3 sass_size.py build/perf/backends/cuda/CMakeFiles/tessera_cuda_kernels.dir/k_matmul_bf16.cu.o GemvBf16 | c++filt
# Usage: sass_size.py OBJ [substr]  -> sizes (instructions = bytes/16) of .text.* sections of the sm_90 cubin in OBJ's fatbin
import struct,sys,subprocess
data=open(sys.argv[1],'rb').read()
off=data.find(b'\x50\xed\x55\xba')
magic,ver,hsz,fsz=struct.unpack_from('<IHHQ',data,off)
p=off+hsz; end=p+fsz; cub=None
while p<end:
    kind,unk,ehs,size=struct.unpack_from('<HHIQ',data,p)
    if kind==2:
        blob=data[p+ehs:p+ehs+size]
        cub=subprocess.run(['zstd','-dc'],input=blob,capture_output=True).stdout if blob[:4]==b'\x28\xb5\x2f\xfd' else blob
    p+=ehs+size
e=cub
shoff,=struct.unpack_from('<Q',e,0x28); shentsize,shnum,shstrndx=struct.unpack_from('<HHH',e,0x3a)
secs=[struct.unpack_from('<IIQQQQIIQQ',e,shoff+i*shentsize) for i in range(shnum)]
stro=secs[shstrndx][4]
def nm(o): return e[stro+o:e.index(b'\0',stro+o)].decode()
pat=sys.argv[2] if len(sys.argv)>2 else ''
for s in secs:
    n=nm(s[0])
    if n.startswith('.text.') and pat in n: print(s[5]//16, n[6:])
